"""Deciding an applicant's events: candidates, their worth, and 时间从新、标准从高、不重复."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from calculator.engine.amounts import ZERO, Worth, instalments, to_fen, worth
from calculator.engine.conditions import cel_view
from calculator.engine.model import (
    EMPTY_LEDGER,
    Applicant,
    Clause,
    Considered,
    Decision,
    Event,
    Ledger,
    Payment,
    Result,
    Status,
    Strategy,
    build_result,
)
from calculator.engine.rules import DEFAULT_STRATEGY, RuleSet, Screening

_HALF_FEN = Decimal("0.005")  # an amount below it is 0.00 once rounded to the fen


ONLY = "唯一符合条件的条款"


class _Request:
    """One applicant's events: the ledger, what earlier events of the request already took (so
    one request never pays twice), and what conditions see, built only when one is evaluated."""

    __slots__ = (
        "_applicant_view",
        "_event",
        "_event_view",
        "applicant",
        "by_cap",
        "by_cap_year",
        "by_subject",
        "by_subject_cap",
        "ledger",
        "rules",
    )

    def __init__(self, applicant: Applicant, rules: RuleSet, ledger: Ledger) -> None:
        self.applicant = applicant
        self.rules = rules
        self.ledger = ledger
        self.by_subject: dict[tuple[str, str], Decimal] = {}
        self.by_cap: dict[str, Decimal] = {}
        self.by_cap_year: dict[tuple[str, int], Decimal] = {}
        self.by_subject_cap: dict[tuple[str, str, str], Decimal] = {}
        self._applicant_view: dict[str, Any] | None = None
        self._event: Event | None = None
        self._event_view: dict[str, Any] = {}

    def applicant_view(self) -> dict[str, Any]:
        if self._applicant_view is None:
            self._applicant_view = _applicant_view(self.applicant)
        return self._applicant_view

    def event_view(self, event: Event) -> dict[str, Any]:
        if self._event is not event:
            self._event, self._event_view = event, _event_view(event)
        return self._event_view

    def granted_so_far(self, event: Event) -> Decimal:
        """What the ledger and earlier events of the request granted for the event's subject."""
        if not self.by_subject and not self.ledger.by_subject:
            return ZERO
        return self.ledger.granted(event.matter, event.subject) + self.by_subject.get(
            (event.matter, event.subject), ZERO
        )

    def granted_under_cap(self, event: Event, clause: Clause) -> Decimal:
        """What the ledger and earlier events of the request paid for the event's subject under
        the clause's cap: the part of the subject's grants inside that cap's balance (its
        undivided balance included, which `_cap_room` counts too)."""
        key = clause.cap_key_for(event)
        subject = (event.matter, event.subject, key)
        granted = self.ledger.by_subject_cap.get(subject, ZERO) + self.by_subject_cap.get(
            subject, ZERO
        )
        undivided = clause.undivided_cap_key(key)
        if undivided is not None:
            granted += self.ledger.by_subject_cap.get((*subject[:2], undivided), ZERO)
        return granted


class _Candidate:
    __slots__ = ("amount", "clause", "worth")

    def __init__(self, clause: Clause, worth: Worth, amount: Decimal) -> None:
        self.clause = clause
        self.worth = worth
        self.amount = amount  # after the per-event cap


def decide(
    applicant: Applicant,
    events: Sequence[Event],
    rules: RuleSet,
    ledger: Ledger = EMPTY_LEDGER,
) -> Decision:
    """Decide every event of one applicant under one rule set and what the ledger granted.

    Events are decided in the order of their dates, as their claims would reach the ledger, so
    that caps and 补差 do not depend on the order a request lists them in; each result keeps
    its event's place in the request.
    """
    request = _Request(applicant, rules, ledger)
    if len(events) == 1:
        result = _decide_event(0, events[0], request)
        return Decision(rules.version, result.amount, (result,))
    decided: list[Result | None] = [None] * len(events)
    for index in sorted(range(len(events)), key=lambda i: _in_time(events[i], i)):
        decided[index] = _decide_event(index, events[index], request)
    results = tuple(r for r in decided if r is not None)
    return Decision(rules.version, to_fen(sum((r.amount for r in results), ZERO)), results)


def _in_time(event: Event, index: int) -> tuple[Any, ...]:
    """Where an event comes when a request's events are decided: by date, then by what it is,
    so that listing them otherwise changes nothing; identical events by their place."""
    attributes = sorted(event.attributes.items()) if event.attributes else ()
    return (event.date, event.matter, event.subject, event.quantity, repr(attributes), index)


def _applicant_view(applicant: Applicant) -> dict[str, Any]:
    view = cel_view(applicant.attributes)
    view.update(kind=applicant.kind, region=applicant.region, id=applicant.id, name=applicant.name)
    return view


def _event_view(event: Event) -> dict[str, Any]:
    view = cel_view(event.attributes)
    view["quantity"] = event.quantity
    view["year"] = event.date.year
    view["date"] = event.date.isoformat()
    view["subject"] = event.subject
    view["matter"] = event.matter
    return view


def _decide_event(index: int, event: Event, request: _Request) -> Result:
    region = request.applicant.region
    kind = request.applicant.kind
    day = event.date.toordinal()
    considered: list[Considered] = []
    candidates: list[_Candidate] = []
    ranges: list[_Candidate] = []
    missing: list[str] = []
    # The first reason a clause is not a candidate, in the order of the semantics.
    for screening in request.rules.screenings.get(event.matter, ()):
        if region not in screening.covered:
            considered.append(screening.out_of_jurisdiction)
        elif not screening.first_day <= day <= screening.last_day:
            if screening.in_force_from <= day <= screening.in_force_to:
                considered.append(screening.clause_not_in_force)
            else:
                considered.append(screening.not_in_force)
        elif kind not in screening.beneficiaries:
            considered.append(screening.mismatch[kind])
        else:
            _weigh(screening, event, request, considered, candidates, ranges, missing)
    strategy = request.rules.strategies.get(event.matter, DEFAULT_STRATEGY)
    unknown = tuple(dict.fromkeys(missing)) if missing else ()
    if not candidates and not ranges:  # most events: nothing applies
        previously = request.granted_so_far(event)
        return _nothing_due(index, event, strategy, previously, considered, unknown)
    if (
        len(candidates) == 1
        and not ranges
        and strategy.kind == "newest_then_highest"
        and not (missing and event.matter in request.rules.overruling)
    ):
        # One candidate: nothing supersedes it and nothing ranks against it.
        previously = request.granted_so_far(event)
        return _grant(
            index, event, strategy, candidates[0], ONLY, previously, request, considered, unknown
        )
    return _settle(index, event, strategy, request, candidates, ranges, considered, unknown)


def _weigh(
    screening: Screening,
    event: Event,
    request: _Request,
    considered: list[Considered],
    candidates: list[_Candidate],
    ranges: list[_Candidate],
    missing: list[str],
) -> None:
    """Condition, exclusions and worth of a clause in the region, in force and for the kind."""
    clause = screening.clause
    unknown: tuple[str, ...] = ()
    if screening.condition is not None:
        verdict = screening.condition.evaluate(request.event_view(event), request.applicant_view())
        if verdict.value is None:
            unknown = verdict.missing  # unless an exclusion holds whatever they are
        elif not verdict.value:
            considered.append(clause.verdict("condition_not_met"))
            return
    for rule in screening.exclusions:
        # An exclusion whose facts were not declared does not apply: the applicant declares them.
        if _lacks(rule.when.needs, event, request.applicant):
            continue  # it cannot hold, and its views need not be built
        if rule.when.holds(request.event_view(event), request.applicant_view()):
            considered.append(
                Considered(clause, "excluded", f"适用排除规则 {rule.ref}：{rule.quote}")
            )
            return
    value = screening.fixed_worth
    if unknown:
        # What the amount needs besides is asked for at once, not on the next request.
        if value is None and (needed := worth(clause.amount, event)).kind == "unknown":
            unknown = (*unknown, *(name for name in needed.missing if name not in unknown))
        missing.extend(unknown)
        considered.append(Considered(clause, "unknown", f"缺少属性：{'、'.join(unknown)}"))
        return
    if value is None:
        value = worth(clause.amount, event)
    if value.kind == "amount":
        amount = value.amount
        if amount < _HALF_FEN:  # a base or an assessment of 0: nothing to pay, to the fen
            considered.append(Considered(clause, "condition_not_met", f"金额为 0：{value.basis}"))
            return
        per_event = clause.caps.per_event
        if per_event is not None and amount > per_event:
            amount = per_event
        if screening.capped:
            room = _cap_room(clause, event, request)
            if room is not None:
                # What this subject already got under the cap is inside the cap's balance;
                # what it got under other clauses is not, and does not widen this one.
                amount = min(amount, room + request.granted_under_cap(event, clause))
        candidates.append(_Candidate(clause, value, amount))
    elif value.kind == "unknown":
        missing.extend(value.missing)
        considered.append(Considered(clause, "unknown", f"缺少属性：{'、'.join(value.missing)}"))
    elif value.kind == "below_threshold":
        considered.append(Considered(clause, "condition_not_met", f"未达到最低档：{value.basis}"))
    elif value.kind == "unspecified":
        considered.append(clause.verdict("unspecified"))
    elif value.kind == "non_cash":
        considered.append(clause.verdict("non_cash"))
    else:
        _weigh_range(screening, value, event, request, considered, ranges)


def _weigh_range(
    screening: Screening,
    value: Worth,
    event: Event,
    request: _Request,
    considered: list[Considered],
    ranges: list[_Candidate],
) -> None:
    """A range to assess, its top lowered to what the clause's caps still allow."""
    clause = screening.clause
    low, high = value.range or (ZERO, ZERO)
    top = high
    if clause.caps.per_event is not None:
        top = min(top, clause.caps.per_event)
    if screening.capped:
        room = _cap_room(clause, event, request)
        if room is not None:
            top = min(top, room + request.granted_under_cap(event, clause))
    if top < _HALF_FEN:
        considered.append(Considered(clause, "condition_not_met", "累计或年度上限已用尽"))
        return
    if top < high:
        value = replace(value, range=(min(low, top), top), basis=f"{value.basis}（受上限所限）")
    ranges.append(_Candidate(clause, value, ZERO))


# What conditions see besides the attributes given: the views' own fields.
_EVENT_FIELDS = frozenset(_event_view(Event("", dt.date.min, "")))
_APPLICANT_FIELDS = frozenset(_applicant_view(Applicant("", "enterprise", "")))


def _lacks(needs: tuple[tuple[str, str], ...], event: Event, applicant: Applicant) -> bool:
    """Whether an attribute a condition cannot be true without is absent."""
    for variable, name in needs:
        if variable == "event":
            if name not in event.attributes and name not in _EVENT_FIELDS:
                return True
        elif name not in applicant.attributes and name not in _APPLICANT_FIELDS:
            return True
    return False


def _rank(candidate: _Candidate) -> tuple[Decimal, int, str]:
    document = candidate.clause.document
    return (-candidate.amount, -document.effective_from.toordinal(), document.id)


def _settle(
    index: int,
    event: Event,
    strategy: Strategy,
    request: _Request,
    candidates: list[_Candidate],
    ranges: list[_Candidate],
    considered: list[Considered],
    missing: tuple[str, ...],
) -> Result:
    live: list[_Candidate] = []
    live_ranges: list[_Candidate] = []
    superseded = 0
    contenders = [*candidates, *ranges]
    documents = {c.clause.document.id: c.clause.document for c in contenders}
    superseded_by = request.rules.superseded_by
    for candidate in contenders:
        if len(documents) == 1:  # nothing to supersede it
            (live_ranges if candidate.worth.kind == "range" else live).append(candidate)
            continue
        superseders = superseded_by.get((event.matter, candidate.clause.document.id), ())
        newer = next((d for d in documents if d in superseders), None)
        if newer is not None:
            by = documents[newer].doc_no or newer
            # A range has no amount until assessed: it shows none, not 0.
            worth = None if candidate.worth.kind == "range" else candidate.amount
            considered.append(
                Considered(candidate.clause, "superseded", f"时间从新：已被 {by} 取代", worth)
            )
            superseded += 1
        elif candidate.worth.kind == "range":
            live_ranges.append(candidate)
        else:
            live.append(candidate)

    if missing:
        _hold_back(event, strategy, request, live, live_ranges, considered)

    previously = request.granted_so_far(event)

    if strategy.kind == "priority" and (live or live_ranges):
        return _by_priority(
            index, event, strategy, request, [*live, *live_ranges], considered, missing, previously
        )

    if strategy.kind == "cumulative" and (live or live_ranges):
        return _cumulative(
            index, event, strategy, live, live_ranges, considered, missing, previously, request
        )

    winner: _Candidate | None = None
    if live:
        live.sort(key=_rank)
        winner = live[0]
        for other in live[1:]:
            if other.amount != winner.amount:
                reason = f"标准从高：适用 {_named(winner)}"
            elif other.clause.document.effective_from < winner.clause.document.effective_from:
                reason = f"标准相同，时间从新：适用 {_named(winner)}"
            else:  # the same amount from the same day: one of them, the same every time
                reason = f"标准相同，同日施行，按文件标识适用 {_named(winner)}"
            if other.amount < other.worth.amount:
                reason += f"（本条受上限所限为 {to_fen(other.amount)!s} 元）"
            considered.append(Considered(other.clause, "lower_standard", reason, other.amount))

    best = winner.amount if winner is not None else ZERO
    open_ranges = [r for r in live_ranges if r.worth.range is not None and r.worth.range[1] > best]
    for r in live_ranges:
        if r not in open_ranges:
            considered.append(
                Considered(r.clause, "lower_standard", "标准从高：区间上限不高于已确定金额")
            )

    if open_ranges:
        low = max([best, *(r.worth.range[0] for r in open_ranges if r.worth.range)])
        high = max(r.worth.range[1] for r in open_ranges if r.worth.range)
        if previously >= to_fen(high):
            return _paid_to_the_top(
                index, event, strategy, winner, open_ranges, high, previously, considered, missing
            )
        if winner is not None:
            considered.append(
                Considered(
                    winner.clause, "lower_standard", "有上限更高的区间条款待评定", winner.amount
                )
            )
        return _to_assess(
            index, event, strategy, open_ranges, low, high, previously, considered, missing
        )

    if winner is None:
        return _nothing_due(index, event, strategy, previously, considered, missing)
    if len(live) > 1 or (live_ranges and not superseded):
        reason = "时间从新、标准从高：金额最高"
    elif superseded:
        reason = "时间从新：其他符合条件的条款已被取代"
    else:
        reason = ONLY
    return _grant(index, event, strategy, winner, reason, previously, request, considered, missing)


def _named(candidate: _Candidate) -> str:
    document = candidate.clause.document
    return document.doc_no or document.id


def _to_assess(
    index: int,
    event: Event,
    strategy: Strategy,
    ranges: list[_Candidate],
    low: Decimal,
    high: Decimal,
    previously: Decimal,
    considered: list[Considered],
    missing: tuple[str, ...],
) -> Result:
    """Ranges still to be assessed decide the event: nothing is paid until an amount is."""
    for r in ranges:
        considered.append(Considered(r.clause, "needs_assessment", _to_assess_reason(r)))
    return build_result(
        event_index=index,
        event=event,
        strategy=strategy.kind,
        status="needs_assessment",
        amount=ZERO,
        granted=None,
        basis="需评定金额",
        entitlement=ZERO,
        previously_granted=to_fen(previously),
        considered=tuple(considered),
        missing=missing,
        range=(to_fen(low), to_fen(high)),
    )


def _paid_to_the_top(
    index: int,
    event: Event,
    strategy: Strategy,
    fixed: _Candidate | None,
    ranges: list[_Candidate],
    high: Decimal,
    previously: Decimal,
    considered: list[Considered],
    missing: tuple[str, ...],
) -> Result:
    """The ledger has granted the top of every range still open: whatever an assessment found,
    nothing more is due (不重复), and none is asked for."""
    top = max(ranges, key=lambda r: r.worth.range[1] if r.worth.range else ZERO)
    if fixed is not None:
        lost = f"标准从高：适用 {_named(top)} 的区间条款"
        considered.append(Considered(fixed.clause, "lower_standard", lost, fixed.amount))
    reason = f"台账已发放 {to_fen(previously)!s} 元，不低于区间上限，无需评定"
    for r in ranges:
        if r is not top:
            considered.append(Considered(r.clause, "lower_standard", reason))
    granted = Considered(top.clause, "granted", reason)
    considered.append(granted)
    return build_result(
        event_index=index,
        event=event,
        strategy=strategy.kind,
        status="eligible",
        amount=ZERO,
        granted=granted,
        basis=top.worth.basis,
        entitlement=to_fen(high),
        previously_granted=to_fen(previously),
        considered=tuple(considered),
        missing=missing,
    )


def _to_assess_reason(candidate: _Candidate) -> str:
    worth = candidate.worth
    low, high = worth.range or (ZERO, ZERO)
    note = worth.basis.removeprefix("需评定")
    return f"需评定：{to_fen(low)!s} 至 {to_fen(high)!s} 元{note}"


def _by_priority(
    index: int,
    event: Event,
    strategy: Strategy,
    request: _Request,
    pool: list[_Candidate],
    considered: list[Considered],
    missing: tuple[str, ...],
    previously: Decimal,
) -> Result:
    """The document named first wins whatever the amounts, a range of its own included."""
    order = _priority_order(strategy)
    pool.sort(key=lambda c: (order.get(c.clause.document.id, len(order)), *_rank(c)))
    first = pool[0]
    for other in pool[1:]:
        reason = f"按规定优先适用：适用 {_named(first)}"
        amount = None if other.worth.kind == "range" else other.amount
        considered.append(Considered(other.clause, "not_cumulative", reason, amount))
    if first.worth.kind == "range" and first.worth.range is not None:
        low, high = first.worth.range
        if previously >= to_fen(high):
            return _paid_to_the_top(
                index, event, strategy, None, [first], high, previously, considered, missing
            )
        return _to_assess(
            index, event, strategy, [first], low, high, previously, considered, missing
        )
    if first.clause.document.id in order:
        reason = "按规定优先适用"
    elif len(pool) > 1:  # no named document's clause applies: the highest, as by default
        reason = "优先适用的文件均不适用；标准从高：金额最高"
    else:
        reason = f"优先适用的文件均不适用；{ONLY}"
    return _grant(index, event, strategy, first, reason, previously, request, considered, missing)


def _priority_order(strategy: Strategy) -> dict[str, int]:
    return {document: i for i, document in enumerate(strategy.priority)}


def _hold_back(
    event: Event,
    strategy: Strategy,
    request: _Request,
    live: list[_Candidate],
    live_ranges: list[_Candidate],
    considered: list[Considered],
) -> None:
    """Take out the candidates that a clause still unknown would overrule if it applied: one of
    a document that supersedes theirs, or, under a priority, of a document named before theirs.
    Paying them now could not be undone when the missing attributes come."""
    unknown = {
        c.clause.document.id: c.clause.document for c in considered if c.outcome == "unknown"
    }
    superseded_by = request.rules.superseded_by
    if strategy.kind == "priority":
        order = _priority_order(strategy)
        first = min((order.get(d, len(order)) for d in unknown), default=len(order))
        if first == len(order):
            return  # no unknown clause of a named document

        def overruled(c: _Candidate) -> str | None:
            mine = order.get(c.clause.document.id, len(order))
            return next((d for d in unknown if order.get(d, len(order)) < mine), None)
    else:

        def overruled(c: _Candidate) -> str | None:
            newer = superseded_by.get((event.matter, c.clause.document.id), ())
            return next((d for d in unknown if d in newer), None)

    for pending in (live, live_ranges):
        for candidate in list(pending):
            by = overruled(candidate)
            if by is not None:
                pending.remove(candidate)
                named = unknown[by].doc_no or by
                reason = f"待定：{named} 的条款缺少属性，若适用则优先于本条"
                considered.append(Considered(candidate.clause, "unknown", reason))


def _grant(
    index: int,
    event: Event,
    strategy: Strategy,
    winner: _Candidate,
    reason: str,
    previously: Decimal,
    request: _Request,
    considered: list[Considered],
    missing: tuple[str, ...],
) -> Result:
    """Pay the winner what its entitlement leaves after earlier grants (补差), within its caps."""
    entitlement = winner.amount
    entitled = to_fen(entitlement)
    # What is paid is in fen, as the ledger records it: earlier grants and caps are counted
    # in what was paid, within a request as across requests.
    due = entitled - previously if previously else entitled
    if due < ZERO:
        due = ZERO
    due = _apply_running_caps(winner.clause, event, due, request)
    subject = (event.matter, event.subject)
    request.by_subject[subject] = request.by_subject.get(subject, ZERO) + due
    if not due and not previously:  # nothing paid before, nothing now: its caps are used up
        reason = f"{reason}；累计或年度上限已用尽"
    granted = Considered(winner.clause, "granted", reason, winner.amount)
    considered.append(granted)
    schedule = winner.worth.schedule
    if schedule:
        schedule = instalments(schedule, previously, due)
    basis = winner.worth.basis
    if entitlement != winner.worth.amount:
        basis = f"{basis}，受上限所限为 {entitled!s} 元"
    # Most granted events end here: the result is made directly, its fields in order.
    return Result(
        index, event, "eligible", due, strategy.kind,
        granted, basis, entitled, to_fen(previously),
        tuple(considered), missing, None, schedule, (granted,),
    )  # fmt: skip


def _nothing_due(
    index: int,
    event: Event,
    strategy: Strategy,
    previously: Decimal,
    considered: list[Considered],
    missing: tuple[str, ...],
) -> Result:
    """No candidate pays: unknown when an attribute is missing, else ineligible."""
    status: Status = "unknown" if missing else "ineligible"
    previously = to_fen(previously)
    # Most events end here: the result is made directly, its fields in order.
    return Result(
        index, event, status, ZERO, strategy.kind, None, "", ZERO, previously, tuple(considered),
        missing,
    )  # fmt: skip


def _cap_room(clause: Clause, event: Event, request: _Request) -> Decimal | None:
    """What the clause's cumulative and yearly caps still allow, or None when it has neither."""
    caps = clause.caps
    if not caps.running:
        return None
    ledger = request.ledger
    key = clause.cap_key_for(event)
    undivided = clause.undivided_cap_key(key)
    room: Decimal | None = None
    if caps.cumulative is not None:
        used = ledger.by_cap.get(key, ZERO) + request.by_cap.get(key, ZERO)
        if undivided is not None:
            used += ledger.by_cap.get(undivided, ZERO)
        room = max(ZERO, caps.cumulative - used)
    if caps.per_applicant_year is not None:
        year = (key, event.date.year)
        used = ledger.by_cap_year.get(year, ZERO) + request.by_cap_year.get(year, ZERO)
        if undivided is not None:
            used += ledger.by_cap_year.get((undivided, event.date.year), ZERO)
        left = max(ZERO, caps.per_applicant_year - used)
        room = left if room is None else min(room, left)
    return room


def _apply_running_caps(clause: Clause, event: Event, due: Decimal, request: _Request) -> Decimal:
    """Limit a payment by the clause's cumulative and yearly caps, and count it against them."""
    if clause.cap_key not in request.rules.cap_keys:
        return due
    key = clause.cap_key_for(event)
    room = _cap_room(clause, event, request)
    if room is not None:
        due = min(due, room)
    request.by_cap[key] = request.by_cap.get(key, ZERO) + due
    year_key = (key, event.date.year)
    request.by_cap_year[year_key] = request.by_cap_year.get(year_key, ZERO) + due
    subject_key = (event.matter, event.subject, key)
    request.by_subject_cap[subject_key] = request.by_subject_cap.get(subject_key, ZERO) + due
    return due


def _cumulative(
    index: int,
    event: Event,
    strategy: Strategy,
    live: list[_Candidate],
    live_ranges: list[_Candidate],
    considered: list[Considered],
    missing: tuple[str, ...],
    previously: Decimal,
    request: _Request,
) -> Result:
    """Every candidate is paid, together within the strategy's total cap; while a range is still
    to be assessed, so is the sum (its bounds the fixed amounts plus the ranges' bounds)."""
    live.sort(key=_rank)
    fixed = sum((c.amount for c in live), ZERO)
    cap = strategy.total_cap
    together = live
    if live_ranges:
        low = fixed + sum((r.worth.range[0] for r in live_ranges if r.worth.range), ZERO)
        high = fixed + sum((r.worth.range[1] for r in live_ranges if r.worth.range), ZERO)
        if cap is not None:
            low, high = min(low, cap), min(high, cap)
        if previously < to_fen(high):
            for c in live:
                reason = "可叠加：与待评定的区间条款一并享受"
                considered.append(Considered(c.clause, "needs_assessment", reason, c.amount))
            return _to_assess(
                index, event, strategy, live_ranges, low, high, previously, considered, missing
            )
        # Whatever the ranges are assessed at, nothing more is due.
        total = to_fen(high)
        together = [*live, *live_ranges]
        reason = f"可叠加：台账已发放 {to_fen(previously)!s} 元，不低于合计上限，无需评定"
        paid = tuple(
            Considered(c.clause, "granted", reason, None if c in live_ranges else c.amount)
            for c in together
        )
    else:
        total = to_fen(fixed if cap is None else min(fixed, cap))
        paid = tuple(Considered(c.clause, "granted", "可叠加：一并享受", c.amount) for c in live)
    considered.extend(paid)
    due = max(ZERO, total - previously)
    subject = (event.matter, event.subject)
    request.by_subject[subject] = request.by_subject.get(subject, ZERO) + due
    schedule: tuple[Payment, ...] = ()
    if any(c.worth.schedule for c in live):
        schedule = instalments(_together(live, event), previously, due)
    return build_result(
        event_index=index,
        event=event,
        strategy=strategy.kind,
        status="eligible",
        amount=due,
        granted=paid[0],
        basis=" + ".join(c.worth.basis for c in together),
        entitlement=total,
        previously_granted=to_fen(previously),
        considered=tuple(considered),
        missing=missing,
        schedule=schedule,
        paid_by=paid,
    )


def _together(paid: list[_Candidate], event: Event) -> tuple[Payment, ...]:
    """The instalments of several amounts paid together: a one-off amount on the event's date,
    a periodic one on its own dates (as far as its cap lets it go), those of one day as one."""
    by_day: dict[dt.date, Decimal] = {}
    for c in paid:
        if c.worth.schedule:
            parts = instalments(c.worth.schedule, ZERO, to_fen(c.amount))
        else:
            parts = (Payment(1, event.date, c.amount),)
        for part in parts:
            by_day[part.due] = by_day.get(part.due, ZERO) + part.amount
    return tuple(Payment(i, day, by_day[day]) for i, day in enumerate(sorted(by_day), start=1))


def with_index(result: Result, index: int) -> Result:
    """The same result for another position in a request."""
    return replace(result, event_index=index)
