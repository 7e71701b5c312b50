"""Conditions in CEL, compiled once per rule set and evaluated per event."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import cel

_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_ATTRIBUTE = re.compile(r"\b(event|applicant)\.([A-Za-z_][A-Za-z0-9_]*)")


class ConditionError(ValueError):
    """A condition that does not compile, or does not evaluate to true or false."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """True, false, or unknown for want of the named attributes."""

    value: bool | None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled CEL expression and the attributes it reads."""

    source: str
    program: Any
    reads: tuple[tuple[str, str], ...]

    def evaluate(self, event: Mapping[str, Any], applicant: Mapping[str, Any]) -> Verdict:
        """Evaluate on an event and applicant; missing attributes make the verdict unknown."""
        missing = tuple(
            f"{variable}.{name}" if variable == "applicant" else name
            for variable, name in self.reads
            if name not in (event if variable == "event" else applicant)
        )
        if missing:
            return Verdict(None, missing)
        try:
            value = self.program.execute({"event": event, "applicant": applicant})
        except Exception as exc:  # the library raises bare errors on type faults
            raise ConditionError(f"{self.source!r} failed: {exc}") from exc
        if not isinstance(value, bool):
            raise ConditionError(f"{self.source!r} gave {value!r}, not true or false")
        return Verdict(value)


def compile_condition(source: str) -> Condition:
    """Parse a condition once."""
    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise ConditionError(str(exc).splitlines()[0]) from exc
    code = _STRING_LITERAL.sub('""', source)
    reads = tuple(sorted({(m.group(1), m.group(2)) for m in _ATTRIBUTE.finditer(code)}))
    return Condition(source=source, program=program, reads=reads)


def cel_value(value: Any) -> Any:
    """A value as CEL sees it: decimals become numbers, nested values likewise."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [cel_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: cel_value(v) for k, v in value.items()}
    return value
