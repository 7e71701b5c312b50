"""Turning a validated request into engine inputs, and a decision into the API's shape."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from subsidy_common.identifiers import (
    IdentifierInvalid,
    patent_kind,
    patent_kinds_within,
    subject_forms,
    subject_key,
    validate_ric,
    validate_uscc,
)
from subsidy_common.problems import InvalidInput

from calculator.calculations.schemas import SUBJECT_LENGTH, ApplicantIn, CalculationIn, EventIn
from calculator.engine.amounts import to_fen
from calculator.engine.conditions import ConditionError
from calculator.engine.decide import decide
from calculator.engine.model import (
    Applicant,
    Considered,
    Decision,
    Event,
    Ledger,
    Result,
)
from calculator.engine.rules import RuleSet

UNIVERSAL_EVENT_ATTRIBUTES = frozenset({"assessed_amount"})
_NUMBER_BOUND = Decimal(10) ** 12
_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ConditionFailed(InvalidInput):
    """A policy's condition that could not be judged on the values sent."""


def decided(
    applicant: Applicant, events: Sequence[Event], rules: RuleSet, ledger: Ledger
) -> Decision:
    """The engine's decision; a condition the values sent cannot be judged by is the input's
    problem (422), not the service's."""
    try:
        return decide(applicant, events, rules, ledger)
    except ConditionError as exc:
        raise ConditionFailed(
            "A policy condition could not be judged on the values sent.",
            errors=[{"loc": ["body"], "msg": str(exc), "type": "condition"}],
        ) from exc


def applicant_id(applicant: ApplicantIn, today: dt.date) -> str:
    """The canonical identifier, checked against the applicant's kind."""
    if applicant.kind == "individual":
        return validate_ric(applicant.id, today=today)
    return validate_uscc(applicant.id)


def _type_error(spec: Mapping[str, Any], value: Any) -> str | None:
    kind = spec.get("type")
    if kind == "enum":
        values = spec.get("values", ())
        # A value written as a number, as the matters list writes grades (1, 2, 3), is its text.
        known = value in values or (type(value) is int and str(value) in values)
        return None if known else f"must be one of {values}"
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be an integer"
        return None if abs(value) < 10**12 else "must be an integer below 10^12"
    if kind in ("decimal", "money"):
        if isinstance(value, bool):
            return "must be a number"
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return "must be a number"
        # Below 10^12 a JSON number keeps its fen, and the ledger can hold what it pays.
        if not number.is_finite() or abs(number) >= _NUMBER_BOUND:
            return "must be a finite number below 10^12"
        return "must not be negative" if kind == "money" and number < 0 else None
    if kind == "integer_list":
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
        return None if ok else "must be a list of integers"
    if kind == "date":
        if not (isinstance(value, str) and _DATE_TEXT.match(value)):
            return "must be a date YYYY-MM-DD"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "must be a date YYYY-MM-DD"
        return None
    return None if isinstance(value, str) else "must be text"


def _as_read(spec: Mapping[str, Any], value: Any) -> Any:
    """A checked value as conditions and amounts read it: a number sent as text is a number,
    an enum's value sent as a number is its text."""
    if type(value) is str and spec.get("type") in ("decimal", "money"):
        return Decimal(value)
    if type(value) is int and spec.get("type") == "enum" and value not in spec.get("values", ()):
        return str(value)
    return value


def validate(
    request: CalculationIn, rules: RuleSet, today: dt.date
) -> tuple[Applicant, list[Event]]:
    """Check the request against the registry (ids, regions, matters, attributes), all at once."""
    errors: list[dict[str, Any]] = []

    def fail(loc: list[str | int], msg: str) -> None:
        errors.append({"loc": loc, "msg": msg, "type": "value_error"})

    try:
        canonical = applicant_id(request.applicant, today)
    except IdentifierInvalid as exc:
        canonical = request.applicant.id
        fail(["body", "applicant", "id"], str(exc))
    if request.applicant.region not in rules.ancestors:
        fail(["body", "applicant", "region"], "unknown region code; see /v1/regions")
    applicant_specs: dict[str, Mapping[str, Any]] = {}
    has_attributes = bool(request.applicant.attributes)
    events: list[Event] = []
    for i, event in enumerate(request.events):
        # The subject is an identifier: a patent number typed in full width, with spaces or in
        # lower case is the same patent, and 不重复 counts it once.
        subject, shown = subject_forms(event.subject)
        if not subject:
            fail(["body", "events", i, "subject"], "has nothing left once separators are removed")
        elif len(subject) > SUBJECT_LENGTH:  # NFKC writes ㍿ as 株式会社
            fail(
                ["body", "events", i, "subject"],
                f"is longer than {SUBJECT_LENGTH} characters once in its normal form (NFKC)",
            )
        elif (wrong := _other_patent_kind(event.matter, subject)) is not None:
            fail(["body", "events", i, "subject"], wrong)
        on_event = rules.event_attributes.get(event.matter)
        if on_event is None:
            fail(["body", "events", i, "matter"], "unknown matter; see /v1/matters")
            events.append(_event(event, subject, shown, None))
            continue
        if has_attributes:
            applicant_specs.update(rules.applicant_attributes[event.matter])
        read = None
        if event.attributes:
            read = _check_attributes(
                event.attributes,
                on_event,
                ["body", "events", i, "attributes"],
                fail,
                allowed=UNIVERSAL_EVENT_ATTRIBUTES,
            )
        if divisions := rules.cap_divisions.get(event.matter):
            # The project or achievement a cap is divided by is named as a subject is: one
            # however typed, or its cap would be paid again under each spelling.
            named = {
                name: subject_key(value)
                for name in divisions
                if isinstance(value := event.attributes.get(name), str)
            }
            read = {**(read or {}), **named}
        events.append(_event(event, subject, shown, read))
        if "assessed_amount" in event.attributes:
            error = _type_error({"type": "money"}, event.attributes["assessed_amount"])
            if error:
                fail(["body", "events", i, "attributes", "assessed_amount"], error)
    given = request.applicant
    attributes = given.attributes
    for name, value in given.attributes.items():
        known = applicant_specs.get(name)
        if known is None:
            continue
        if error := _type_error(known, value):
            fail(["body", "applicant", "attributes", name], error)
        elif (read := _as_read(known, value)) is not value:
            attributes = {**attributes, name: read}
    if errors:
        raise InvalidInput(f"Invalid request: {len(errors)} problem(s).", errors=errors)
    applicant = Applicant(canonical, given.kind, given.region, given.name, attributes)
    return applicant, events


def _check_attributes(
    values: Mapping[str, Any],
    specs: Mapping[str, Mapping[str, Any]],
    loc: list[str | int],
    fail: Any,
    *,
    allowed: frozenset[str],
) -> dict[str, Any]:
    """Check the values against the matter's attributes; return those read otherwise than sent."""
    read: dict[str, Any] = {}
    for name, value in values.items():
        if name in allowed:
            continue
        spec = specs.get(name)
        if spec is None:
            fail([*loc, name], "not an attribute of this matter; see /v1/matters")
        elif value is not None:
            if error := _type_error(spec, value):
                fail([*loc, name], error)
            elif (as_read := _as_read(spec, value)) is not value:
                read[name] = as_read
    return read


# The kind of patent a matter rewards, by its key (`patent.<kind>.granted`).
_PATENT_MATTER = re.compile(r"patent\.(invention|utility_model|design)\.")
_PATENT_KIND_NAMES = {"invention": "发明", "utility_model": "实用新型", "design": "外观设计"}
_SHORTEST_PATENT = 9  # an application number before 2004: 8 digits and a check character


def _other_patent_kind(matter: str, subject: str) -> str | None:
    """Why a subject cannot be the patent a matter rewards: its number's type digit names
    another kind (a design patent claimed as an invention would be paid 3000 for 400)."""
    if len(subject) < _SHORTEST_PATENT or not matter.startswith("patent."):
        return None  # without a regular expression: every event of a batch comes by here
    rewarded = _PATENT_MATTER.match(matter)
    if rewarded is None:
        return None
    numbered = patent_kind(subject)
    if numbered is None:  # a number among other words (`专利号ZL…第1件`) is read too
        others = patent_kinds_within(subject) - {rewarded.group(1)}
        numbered = min(others) if others else None
    if numbered is None or numbered == rewarded.group(1):
        return None
    return (
        f"is the number of a {_PATENT_KIND_NAMES[numbered]} patent ({numbered}), by its type"
        f" digit; {matter} rewards {_PATENT_KIND_NAMES[rewarded.group(1)]} patents"
    )


def _event(event: EventIn, subject: str, shown: str, read: Mapping[str, Any] | None) -> Event:
    given = event.attributes
    if given:
        given = {k: v for k, v in given.items() if v is not None}
        if read:
            given.update(read)
    return Event(event.matter, event.date, subject, event.quantity, given, shown)


def money_text(value: Decimal | None) -> str | None:
    """An amount as the API writes it: yuan with two decimals, rounded half-up to the fen as the
    engine rounds (a considered clause's amount may not be rounded yet)."""
    if value is None:
        return None
    text = str(value)
    if text[-3:-2] == ".":  # already in fen, as the engine rounds: its text is the answer's
        return text
    return str(to_fen(value))


def _considered(item: Considered) -> dict[str, Any]:
    clause = item.clause
    document = clause.document
    return {
        "policy_id": document.id,
        "doc_no": document.doc_no,
        "clause_id": clause.id,
        "ref": clause.ref,
        "amount": money_text(item.amount),
        "outcome": item.outcome,
        "reason": item.reason,
    }


def render(decision: Decision) -> dict[str, Any]:
    """The calculation response of api.md."""
    return {
        "registry_version": decision.registry_version,
        "total": money_text(decision.total),
        "results": [render_result(r) for r in decision.results],
    }


def render_result(r: Result) -> dict[str, Any]:
    """One event's decision as the API shows it."""
    granted = None
    if r.granted is not None:
        clause = r.granted.clause
        document = clause.document
        granted = {
            "policy_id": document.id,
            "doc_no": document.doc_no,
            "clause_id": clause.id,
            "ref": clause.ref,
            "basis": r.basis,
            "quote": clause.quote,
        }
    return {
        "event_index": r.event_index,
        "matter": r.event.matter,
        "subject": r.event.shown or r.event.subject,
        "status": r.status,
        "amount": money_text(r.amount),
        "strategy": r.strategy,
        "granted": granted,
        "entitlement": money_text(r.entitlement),
        "previously_granted": money_text(r.previously_granted),
        "considered": [_considered(c) for c in r.considered],
        "missing": list(r.missing),
        "range": {"min": money_text(r.range[0]), "max": money_text(r.range[1])}
        if r.range
        else None,
        "schedule": [
            {"period": p.period, "due": p.due.isoformat(), "amount": money_text(p.amount)}
            for p in r.schedule
        ]
        if r.schedule
        else [],
    }
