"""The engine's values: frozen inputs, compiled rules, and the decisions it returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Literal

ApplicantKind = Literal["enterprise", "individual", "institution"]
Outcome = Literal[
    "granted",
    "superseded",
    "lower_standard",
    "not_cumulative",
    "not_in_force",
    "out_of_jurisdiction",
    "beneficiary_mismatch",
    "condition_not_met",
    "excluded",
    "unknown",
    "needs_assessment",
    "unspecified",
    "non_cash",
]
Status = Literal["eligible", "ineligible", "needs_assessment", "unknown"]
StrategyKind = Literal["newest_then_highest", "priority", "cumulative"]


@dataclass(frozen=True, slots=True)
class Applicant:
    """Who asks: an enterprise, individual or institution in one region."""

    id: str
    kind: ApplicantKind
    region: str
    name: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """One occurrence that may be rewarded."""

    matter: str
    date: dt.date
    subject: str
    quantity: int = 1
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Fixed:
    value: Decimal


@dataclass(frozen=True, slots=True)
class PerUnit:
    rate: Decimal
    unit: str
    units_from: str
    max_units_per_subject: int | None


@dataclass(frozen=True, slots=True)
class Percentage:
    rate: Decimal
    base: str


@dataclass(frozen=True, slots=True)
class Range:
    min: Decimal
    max: Decimal


@dataclass(frozen=True, slots=True)
class Periodic:
    per_period: Decimal
    period: Literal["month", "quarter", "year"]
    periods: int


@dataclass(frozen=True, slots=True)
class Tiered:
    attribute: str
    tiers: tuple[tuple[Decimal, SimpleAmount], ...]


@dataclass(frozen=True, slots=True)
class Unspecified:
    pass


@dataclass(frozen=True, slots=True)
class NonCash:
    description: str
    rate: Decimal | None
    value: Decimal | None


SimpleAmount = Fixed | PerUnit | Percentage | Range | Periodic
Amount = SimpleAmount | Tiered | Unspecified | NonCash


@dataclass(frozen=True, slots=True)
class Caps:
    per_event: Decimal | None = None
    per_applicant_year: Decimal | None = None
    cumulative: Decimal | None = None
    cumulative_key: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """What the engine needs of a document: identity, validity, reach and links."""

    id: str
    doc_no: str | None
    effective_from: dt.date
    effective_to: dt.date | None
    repealed_date: dt.date | None
    jurisdiction: tuple[str, ...]
    supersedes: tuple[tuple[str, frozenset[str] | None], ...] = ()
    covered: frozenset[str] = frozenset()  # every region inside the jurisdiction

    def in_force_on(self, day: dt.date) -> bool:
        """Whether the document applies to an event of that day."""
        if day < self.effective_from:
            return False
        if self.effective_to is not None and day > self.effective_to:
            return False
        return self.repealed_date is None or day < self.repealed_date


@dataclass(frozen=True, slots=True)
class Clause:
    """One compiled entitlement."""

    id: str
    local_id: str
    document: Document
    ref: str
    matter: str
    beneficiaries: frozenset[str]
    condition: Any  # a compiled condition (engine.conditions.Condition) or None
    amount: Amount
    caps: Caps
    effective_from: dt.date | None
    effective_to: dt.date | None
    quote: str
    funding_source: str | None = None
    # Outcomes that depend on the clause alone, made once: a decision allocates none of them.
    verdicts: dict[str, Considered] = field(default_factory=dict, compare=False, repr=False)

    def verdict(self, key: str) -> Considered:
        """The prepared outcome for `key` (an outcome, or `beneficiary_mismatch:<kind>`)."""
        return self.verdicts[key]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A rule that takes eligibility away under a document."""

    id: str
    document_id: str
    ref: str
    when: Any  # a compiled condition
    matters: frozenset[str] | None
    quote: str


@dataclass(frozen=True, slots=True)
class Strategy:
    kind: StrategyKind = "newest_then_highest"
    priority: tuple[str, ...] = ()
    total_cap: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Ledger:
    """What was already granted, as the claims ledger reports it for one applicant."""

    by_subject: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    by_cap: Mapping[str, Decimal] = field(default_factory=dict)
    by_cap_year: Mapping[tuple[str, int], Decimal] = field(default_factory=dict)

    def granted(self, matter: str, subject: str) -> Decimal:
        """Already granted for (matter, subject) to this applicant."""
        return self.by_subject.get((matter, subject), _NOTHING)


_NOTHING = Decimal(0)
EMPTY_LEDGER = Ledger()


@dataclass(frozen=True, slots=True)
class Considered:
    """One clause weighed for an event, with what became of it."""

    clause: Clause
    outcome: Outcome
    reason: str
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    """One instalment of a periodic amount."""

    period: int
    due: dt.date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Result:
    """The decision for one event."""

    event_index: int
    event: Event
    status: Status
    amount: Decimal
    strategy: StrategyKind
    granted: Considered | None
    basis: str
    entitlement: Decimal
    previously_granted: Decimal
    considered: tuple[Considered, ...]
    missing: tuple[str, ...] = ()
    range: tuple[Decimal, Decimal] | None = None
    schedule: tuple[Payment, ...] = ()
    paid_by: tuple[Considered, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The decision for an applicant's events under one registry version."""

    registry_version: str
    total: Decimal
    results: tuple[Result, ...]


# A frozen dataclass's __init__ sets each field through object.__setattr__, which costs more
# than deciding an event. The engine builds its results and decisions through the slots' own
# descriptors instead: the same frozen values at less than half the cost.
_new = object.__new__


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    if names != tuple(f.name for f in fields(cls)):
        raise TypeError(f"the fields of {cls.__name__} changed: update its fast constructor")
    return tuple(getattr(cls, name).__set__ for name in names)


_RESULT_FIELDS = (
    "event_index",
    "event",
    "status",
    "amount",
    "strategy",
    "granted",
    "basis",
    "entitlement",
    "previously_granted",
    "considered",
    "missing",
    "range",
    "schedule",
    "paid_by",
)
(
    _set_event_index,
    _set_event,
    _set_status,
    _set_amount,
    _set_strategy,
    _set_granted,
    _set_basis,
    _set_entitlement,
    _set_previously_granted,
    _set_considered,
    _set_missing,
    _set_range,
    _set_schedule,
    _set_paid_by,
) = _setters(Result, _RESULT_FIELDS)
_set_registry_version, _set_total, _set_results = _setters(
    Decision, ("registry_version", "total", "results")
)


def build_result(
    event_index: int,
    event: Event,
    status: Status,
    amount: Decimal,
    strategy: StrategyKind,
    granted: Considered | None,
    basis: str,
    entitlement: Decimal,
    previously_granted: Decimal,
    considered: tuple[Considered, ...],
    missing: tuple[str, ...] = (),
    range: tuple[Decimal, Decimal] | None = None,
    schedule: tuple[Payment, ...] = (),
    paid_by: tuple[Considered, ...] = (),
) -> Result:
    """The same value as `Result(...)`, built without the frozen guard's cost."""
    result: Result = _new(Result)
    _set_event_index(result, event_index)
    _set_event(result, event)
    _set_status(result, status)
    _set_amount(result, amount)
    _set_strategy(result, strategy)
    _set_granted(result, granted)
    _set_basis(result, basis)
    _set_entitlement(result, entitlement)
    _set_previously_granted(result, previously_granted)
    _set_considered(result, considered)
    _set_missing(result, missing)
    _set_range(result, range)
    _set_schedule(result, schedule)
    _set_paid_by(result, paid_by)
    return result


def build_decision(registry_version: str, total: Decimal, results: tuple[Result, ...]) -> Decision:
    """The same value as `Decision(...)`, built without the frozen guard's cost."""
    decision: Decision = _new(Decision)
    _set_registry_version(decision, registry_version)
    _set_total(decision, total)
    _set_results(decision, results)
    return decision
