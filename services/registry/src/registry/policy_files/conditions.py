"""Eligibility conditions in CEL: parsed with a maintained library, never Python `eval`."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from subsidy_common.cel_core import core as cel

_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_ATTRIBUTE = re.compile(r"\b(event|applicant)\.([A-Za-z_][A-Za-z0-9_]*)")
_VARIABLES = frozenset({"event", "applicant"})


class ConditionInvalid(ValueError):
    """A condition that is not a valid CEL expression over `event` and `applicant`."""


def attributes_read(expression: str) -> set[tuple[str, str]]:
    """The (`event` | `applicant`, attribute) pairs an expression reads."""
    code = _STRING_LITERAL.sub('""', expression)
    return {(m.group(1), m.group(2)) for m in _ATTRIBUTE.finditer(code)}


def check_condition(expression: str) -> set[tuple[str, str]]:
    """Parse a condition and return the attributes it reads, or raise `ConditionInvalid`."""
    try:
        program = cel.compile(expression)
    except ValueError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise ConditionInvalid(first) from exc
    unknown = set(program.variables()) - _VARIABLES
    if unknown:
        names = ", ".join(sorted(unknown))
        raise ConditionInvalid(f"only event and applicant may be read, not {names}")
    return attributes_read(expression)


# Values of each declared type as the calculator hands them to a condition: a number sent with
# fen is a double, a whole one an int, and CEL does not mix the two in arithmetic. A text is
# written as digits, which `int()` of it may read.
_SAMPLES: dict[str, tuple[Any, ...]] = {
    "string": ("2024",),
    "integer": (1,),
    "decimal": (1, 1.5),
    "money": (1, 1.5),
    "boolean": (True, False),
    "date": ("2024-06-01",),
    "integer_list": ([2016], []),
}
EVENT_SAMPLE = {"quantity": 1, "year": 2024, "date": "2024-06-01", "subject": "2024"}
APPLICANT_SAMPLE = {"kind": "enterprise", "region": "510500", "id": "", "name": "示例"}
# Past this many combinations of the values of the attributes a condition reads, each value is
# tried once rather than with every other.
_COMBINATIONS = 256


def judgement_problem(
    expression: str,
    matter: str,
    attributes: Mapping[tuple[str, str], tuple[str, tuple[str, ...]]],
) -> str | None:
    """Why a condition cannot be judged on values of its attributes' declared types, or None.

    `attributes` maps each (`event` | `applicant`, name) to its type and enum values. Every
    combination of the values of the attributes the condition reads is tried: a condition that
    fails or gives other than true or false on one would fail every calculation of its matter
    with such values, whatever else a client sends.
    """
    program = cel.compile(expression)
    read = sorted(attributes_read(expression) & attributes.keys())
    choices = [_samples(*attributes[name]) for name in read]
    if math.prod(len(c) for c in choices) <= _COMBINATIONS:
        rounds: Iterable[tuple[Any, ...]] = itertools.product(*choices)
    else:
        widest = max(len(c) for c in choices)
        rounds = (tuple(c[min(i, len(c) - 1)] for c in choices) for i in range(widest))
    for values in rounds:
        event: dict[str, Any] = {**EVENT_SAMPLE, "matter": matter}
        applicant: dict[str, Any] = dict(APPLICANT_SAMPLE)
        for (on, name), value in zip(read, values, strict=True):
            (event if on == "event" else applicant)[name] = value
        try:
            value = program.execute({"event": event, "applicant": applicant})
        except Exception as exc:  # the library raises bare errors on type faults
            reason = str(exc).split(":")[0] if str(exc) else type(exc).__name__
            given = ", ".join(
                f"{on}.{name} = {v!r}" for (on, name), v in zip(read, values, strict=True)
            )
            return (
                "cannot be judged on values of the attributes' declared types"
                f" ({given or 'none read'}): {reason}"
            )
        if value is not True and value is not False:
            return f"gives {value!r} on values of the attributes' declared types, not true or false"
    return None


def _samples(kind: str, values: tuple[str, ...]) -> tuple[Any, ...]:
    return values if kind == "enum" else _SAMPLES[kind]
