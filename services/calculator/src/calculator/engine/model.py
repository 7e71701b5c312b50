"""The engine's values: frozen inputs, compiled rules, and the decisions it returns."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def made_per_case(cls: type[_T]) -> type[_T]:
    """A value made for each case or event: read-only to the type checker, plain at run time.

    A frozen dataclass sets each field through `object.__setattr__`, which costs three times a
    plain slot's store; for the values made per case that was more than deciding the event.
    mypy still rejects any assignment to their fields, and nothing assigns to them.
    """
    return dataclass(slots=True, unsafe_hash=True)(cls)


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


@made_per_case
class Applicant:
    """Who asks: an enterprise, individual or institution in one region."""

    id: str
    kind: ApplicantKind
    region: str
    name: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)


@made_per_case
class Event:
    """One occurrence that may be rewarded."""

    matter: str
    date: dt.date
    subject: str  # the unit of 不重复, as the ledger keeps it
    quantity: int = 1
    attributes: Mapping[str, Any] = field(default_factory=dict)
    shown: str = ""  # the subject as answers show it, where that differs


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
    per: str | None = None  # an event attribute: the running caps count per value of it

    @property
    def running(self) -> bool:
        """Whether payments count against a cumulative or a yearly cap."""
        return self.cumulative is not None or self.per_applicant_year is not None


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

    @property
    def cap_key(self) -> str:
        """The key its running caps count under: the one clauses sharing a cap name, else its id."""
        return self.caps.cumulative_key or self.id

    def cap_key_for(self, event: Event) -> str:
        """The key an event's payment counts under: `cap_key`, divided by the event's value of
        `caps.per` where the cap is per achievement or project (按该成果……累计最高)."""
        per = self.caps.per
        if per is None:
            return self.cap_key
        value = event.attributes.get(per)
        if value is None:
            return self.cap_key
        # A key of bounded length (the ledger keeps 120 characters), however long the name.
        return f"{self.cap_key}@{hashlib.sha256(_one_name(str(value)).encode()).hexdigest()[:16]}"

    def undivided_cap_key(self, key: str) -> str | None:
        """Where `key` (an event's, from `cap_key_for`) is a project's part of the cap, the
        undivided key: what was paid under it before the cap was divided may have been for any
        project, so it counts against each."""
        return self.cap_key if key != self.cap_key else None


# What a name drops however it was typed: separators, control and invisible format characters.
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―_]+")


def _one_name(value: str) -> str:
    """A project's or an achievement's name as one, however typed: full width to half width,
    separators and invisible characters dropped, one case (`XM-2022-001` is `xm2022001`)."""
    text = unicodedata.normalize("NFKC", value)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))
    return _SEPARATORS.sub("", text).casefold()


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
    """What was already granted, as the claims ledger reports it for one applicant: for the
    (matter, subject) of each event being decided, under each of its caps, and of the former
    what was paid under each cap (by a clause counting against it)."""

    by_subject: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    by_cap: Mapping[str, Decimal] = field(default_factory=dict)
    by_cap_year: Mapping[tuple[str, int], Decimal] = field(default_factory=dict)
    by_subject_cap: Mapping[tuple[str, str, str], Decimal] = field(default_factory=dict)

    def granted(self, matter: str, subject: str) -> Decimal:
        """Already granted for (matter, subject) to this applicant."""
        return self.by_subject.get((matter, subject), _NOTHING)


_NOTHING = Decimal(0)
EMPTY_LEDGER = Ledger()


@made_per_case
class Considered:
    """One clause weighed for an event, with what became of it."""

    clause: Clause
    outcome: Outcome
    reason: str
    amount: Decimal | None = None


@made_per_case
class Payment:
    """One instalment of a periodic amount."""

    period: int
    due: dt.date
    amount: Decimal


@made_per_case
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


@made_per_case
class Decision:
    """The decision for an applicant's events under one registry version."""

    registry_version: str
    total: Decimal
    results: tuple[Result, ...]


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
    """`Result(...)` by name: its fields passed in order, which a dataclass takes fastest."""
    return Result(
        event_index,
        event,
        status,
        amount,
        strategy,
        granted,
        basis,
        entitlement,
        previously_granted,
        considered,
        missing,
        range,
        schedule,
        paid_by,
    )
