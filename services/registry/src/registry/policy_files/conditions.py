"""Eligibility conditions in CEL: parsed with a maintained library, never Python `eval`."""

from __future__ import annotations

import re

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
