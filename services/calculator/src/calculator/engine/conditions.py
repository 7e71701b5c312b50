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
    event_reads: tuple[str, ...] = ()
    applicant_reads: tuple[str, ...] = ()

    def evaluate(self, event: Mapping[str, Any], applicant: Mapping[str, Any]) -> Verdict:
        """Evaluate on an event and applicant; unknown only if a missing attribute decides it.

        CEL short-circuits `&&` and `||` both ways and fails on a missing key only when it must
        read it, so `a == 1 || b == 2` is true with `b` absent when `a` is 1.
        """
        # Only the attributes the expression reads cross into CEL: converting whole views
        # costs more than evaluating the expression.
        seen_event = {n: event[n] for n in self.event_reads if n in event}
        seen_applicant = {n: applicant[n] for n in self.applicant_reads if n in applicant}
        try:
            value = self.program.execute({"event": seen_event, "applicant": seen_applicant})
        except KeyError:
            missing = tuple(n for n in self.event_reads if n not in event) + tuple(
                f"applicant.{n}" for n in self.applicant_reads if n not in applicant
            )
            if missing:
                return Verdict(None, missing)
            raise
        except Exception as exc:  # the library raises bare errors on type faults
            raise ConditionError(f"{self.source!r} failed: {exc}") from exc
        if value is True:
            return TRUE
        if value is False:
            return FALSE
        raise ConditionError(f"{self.source!r} gave {value!r}, not true or false")


TRUE = Verdict(True)
FALSE = Verdict(False)


def compile_condition(source: str) -> Condition:
    """Parse a condition once."""
    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise ConditionError(str(exc).splitlines()[0]) from exc
    code = _STRING_LITERAL.sub('""', source)
    reads = tuple(sorted({(m.group(1), m.group(2)) for m in _ATTRIBUTE.finditer(code)}))
    return Condition(
        source=source,
        program=program,
        reads=reads,
        event_reads=tuple(name for variable, name in reads if variable == "event"),
        applicant_reads=tuple(name for variable, name in reads if variable == "applicant"),
    )


def cel_value(value: Any) -> Any:
    """A value as CEL sees it: decimals become numbers, nested values likewise."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [cel_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: cel_value(v) for k, v in value.items()}
    return value
