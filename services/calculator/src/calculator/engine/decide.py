"""Deciding an applicant's events: candidates, their worth, and 时间从新、标准从高、不重复."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from calculator.engine.amounts import ZERO, Worth, to_fen, worth
from calculator.engine.conditions import cel_value
from calculator.engine.model import (
    EMPTY_LEDGER,
    Applicant,
    Clause,
    Considered,
    Decision,
    Event,
    Ledger,
    Result,
    Strategy,
)
from calculator.engine.rules import RuleSet


class _Running:
    """What earlier events of the same request already took, so one request never pays twice."""

    __slots__ = ("by_cap", "by_cap_year", "by_subject")

    def __init__(self) -> None:
        self.by_subject: dict[tuple[str, str], Decimal] = {}
        self.by_cap: dict[str, Decimal] = {}
        self.by_cap_year: dict[tuple[str, int], Decimal] = {}


@dataclass(frozen=True, slots=True)
class _Candidate:
    clause: Clause
    worth: Worth
    amount: Decimal  # after the per-event cap


def decide(
    applicant: Applicant,
    events: Sequence[Event],
    rules: RuleSet,
    ledger: Ledger = EMPTY_LEDGER,
) -> Decision:
    """Decide every event of one applicant under one rule set and what the ledger granted."""
    running = _Running()
    views = _Views(applicant)
    results = tuple(
        _decide_event(index, applicant, views, event, rules, ledger, running)
        for index, event in enumerate(events)
    )
    total = sum((r.amount for r in results), ZERO)
    return Decision(registry_version=rules.version, total=to_fen(total), results=results)


class _Views:
    """What conditions see, built only when a clause has a condition or an exclusion."""

    __slots__ = ("_applicant", "_applicant_view", "_event", "_event_view")

    def __init__(self, applicant: Applicant) -> None:
        self._applicant = applicant
        self._applicant_view: dict[str, Any] | None = None
        self._event: Event | None = None
        self._event_view: dict[str, Any] | None = None

    def applicant(self) -> dict[str, Any]:
        if self._applicant_view is None:
            a = self._applicant
            view = {k: cel_value(v) for k, v in a.attributes.items()}
            view.update(kind=a.kind, region=a.region, id=a.id, name=a.name)
            self._applicant_view = view
        return self._applicant_view

    def event(self, event: Event) -> dict[str, Any]:
        if self._event is not event or self._event_view is None:
            self._event, self._event_view = event, _event_view(event)
        return self._event_view


def _event_view(event: Event) -> dict[str, Any]:
    view = {k: cel_value(v) for k, v in event.attributes.items()}
    view.update(
        quantity=event.quantity,
        year=event.date.year,
        date=event.date.isoformat(),
        subject=event.subject,
        matter=event.matter,
    )
    return view


def _screen(
    clause: Clause,
    applicant: Applicant,
    views: _Views,
    event: Event,
    rules: RuleSet,
) -> Considered | list[str] | None:
    """The first reason a clause is not a candidate, its missing attributes, or None."""
    document = clause.document
    if applicant.region not in document.covered:
        return clause.verdict("out_of_jurisdiction")
    if not document.in_force_on(event.date):
        return clause.verdict("not_in_force")
    if (clause.effective_from and event.date < clause.effective_from) or (
        clause.effective_to and event.date > clause.effective_to
    ):
        return clause.verdict("clause_not_in_force")
    if applicant.kind not in clause.beneficiaries:
        return clause.verdict(f"beneficiary_mismatch:{applicant.kind}")
    if clause.condition is not None:
        verdict = clause.condition.evaluate(views.event(event), views.applicant())
        if verdict.value is None:
            return list(verdict.missing)
        if not verdict.value:
            return clause.verdict("condition_not_met")
    for rule in rules.exclusions.get(document.id, ()):
        if rule.matters is not None and clause.matter not in rule.matters:
            continue
        # An exclusion whose facts were not declared does not apply: the applicant declares them.
        if rule.when.evaluate(views.event(event), views.applicant()).value:
            return Considered(clause, "excluded", f"适用排除规则 {rule.ref}：{rule.quote}")
    return None


def _supersedes(
    rules: RuleSet, newer: str, older: str, matter: str, docs: Mapping[str, Any]
) -> bool:
    """Whether document `newer` supersedes `older` for a matter, directly or through others."""
    seen: set[str] = set()
    frontier = [newer]
    while frontier:
        current = frontier.pop()
        if current in seen or current not in docs:
            continue
        seen.add(current)
        for target, matters in docs[current].supersedes:
            if matters is not None and matter not in matters:
                continue
            if target == older:
                return True
            frontier.append(target)
    return False


def _decide_event(
    index: int,
    applicant: Applicant,
    views: _Views,
    event: Event,
    rules: RuleSet,
    ledger: Ledger,
    running: _Running,
) -> Result:
    considered: list[Considered] = []
    candidates: list[_Candidate] = []
    ranges: list[_Candidate] = []
    missing: list[str] = []
    for clause in rules.candidates_for(event.matter):
        screened = _screen(clause, applicant, views, event, rules)
        if isinstance(screened, Considered):
            considered.append(screened)
            continue
        if isinstance(screened, list):
            missing.extend(screened)
            considered.append(Considered(clause, "unknown", f"缺少属性：{'、'.join(screened)}"))
            continue
        value = worth(clause.amount, event)
        if value.kind == "unknown":
            missing.extend(value.missing)
            reason = f"缺少属性：{'、'.join(value.missing)}"
            considered.append(Considered(clause, "unknown", reason))
        elif value.kind == "below_threshold":
            considered.append(
                Considered(clause, "condition_not_met", f"未达到最低档：{value.basis}")
            )
        elif value.kind == "unspecified":
            considered.append(clause.verdict("unspecified"))
        elif value.kind == "non_cash":
            considered.append(clause.verdict("non_cash"))
        elif value.kind == "range":
            ranges.append(_Candidate(clause, value, ZERO))
        else:
            amount = value.amount
            if clause.caps.per_event is not None and amount > clause.caps.per_event:
                amount = clause.caps.per_event
            room = _cap_room(clause, event, ledger, running)
            if room is not None:
                # What this subject already got under the cap is inside the cap's balance.
                amount = min(amount, room + _granted_so_far(event, ledger, running))
            candidates.append(_Candidate(clause, value, amount))
    strategy = rules.strategy(event.matter)
    return _settle(
        index,
        applicant,
        event,
        strategy,
        rules,
        ledger,
        running,
        candidates,
        ranges,
        considered,
        tuple(dict.fromkeys(missing)),
    )


def _rank(candidate: _Candidate) -> tuple[Decimal, int, str]:
    document = candidate.clause.document
    return (-candidate.amount, -document.effective_from.toordinal(), document.id)


def _settle(
    index: int,
    applicant: Applicant,
    event: Event,
    strategy: Strategy,
    rules: RuleSet,
    ledger: Ledger,
    running: _Running,
    candidates: list[_Candidate],
    ranges: list[_Candidate],
    considered: list[Considered],
    missing: tuple[str, ...],
) -> Result:
    if not candidates and not ranges:  # most events: nothing applies
        previously = _granted_so_far(event, ledger, running)
        return _nothing_due(index, event, strategy, previously, considered, missing)
    live: list[_Candidate] = []
    live_ranges: list[_Candidate] = []
    contenders = [*candidates, *ranges]
    documents = {c.clause.document.id: c.clause.document for c in contenders}
    for candidate in contenders:
        if len(documents) == 1:  # nothing to supersede it
            (live_ranges if candidate.worth.kind == "range" else live).append(candidate)
            continue
        newer = next(
            (
                d
                for d in documents
                if d != candidate.clause.document.id
                and _supersedes(rules, d, candidate.clause.document.id, event.matter, documents)
            ),
            None,
        )
        if newer is not None:
            considered.append(
                Considered(
                    candidate.clause, "superseded", f"时间从新：已被 {newer} 取代", candidate.amount
                )
            )
        elif candidate.worth.kind == "range":
            live_ranges.append(candidate)
        else:
            live.append(candidate)

    subject_key = (event.matter, event.subject)
    previously = ledger.granted(event.matter, event.subject) + running.by_subject.get(
        subject_key, ZERO
    )

    if strategy.kind == "cumulative" and live:
        return _cumulative(
            index, event, strategy, live, live_ranges, considered, missing, previously, running
        )

    winner: _Candidate | None = None
    if live:
        if strategy.kind == "priority":
            order = {doc: i for i, doc in enumerate(strategy.priority)}
            live.sort(key=lambda c: (order.get(c.clause.document.id, len(order)), *_rank(c)))
            loser_outcome, why = "not_cumulative", "按规定优先适用"
        else:
            live.sort(key=_rank)
            loser_outcome, why = "lower_standard", "标准从高"
        winner = live[0]
        for other in live[1:]:
            reason = f"{why}：适用 {winner.clause.document.doc_no or winner.clause.document.id}"
            considered.append(Considered(other.clause, loser_outcome, reason, other.amount))  # type: ignore[arg-type]

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
        for r in open_ranges:
            considered.append(Considered(r.clause, "needs_assessment", f"需评定：{r.worth.range}"))
        if winner is not None:
            considered.append(
                Considered(
                    winner.clause, "lower_standard", "有上限更高的区间条款待评定", winner.amount
                )
            )
        return Result(
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

    if winner is None:
        return _nothing_due(index, event, strategy, previously, considered, missing)

    entitlement = winner.amount
    due = max(ZERO, entitlement - previously)
    due = _apply_running_caps(winner.clause, event, due, ledger, running)
    running.by_subject[(event.matter, event.subject)] = (
        running.by_subject.get((event.matter, event.subject), ZERO) + due
    )
    granted = Considered(
        winner.clause, "granted", _granted_reason(strategy, len(live)), winner.amount
    )
    considered.append(granted)
    return Result(
        event_index=index,
        event=event,
        strategy=strategy.kind,
        status="eligible",
        amount=to_fen(due),
        granted=granted,
        basis=winner.worth.basis,
        entitlement=to_fen(entitlement),
        previously_granted=to_fen(previously),
        considered=tuple(considered),
        missing=missing,
        schedule=winner.worth.schedule,
        paid_by=(granted,),
    )


def _nothing_due(
    index: int,
    event: Event,
    strategy: Strategy,
    previously: Decimal,
    considered: list[Considered],
    missing: tuple[str, ...],
) -> Result:
    """No candidate pays: unknown when an attribute is missing, else ineligible."""
    return Result(
        event_index=index,
        event=event,
        strategy=strategy.kind,
        status="unknown" if missing else "ineligible",
        amount=ZERO,
        granted=None,
        basis="",
        entitlement=ZERO,
        previously_granted=to_fen(previously) if previously else ZERO,
        considered=tuple(considered),
        missing=missing,
    )


def _granted_reason(strategy: Strategy, count: int) -> str:
    if strategy.kind == "priority":
        return "按规定优先适用"
    return "唯一符合条件的条款" if count == 1 else "时间从新、标准从高：金额最高"


def _granted_so_far(event: Event, ledger: Ledger, running: _Running) -> Decimal:
    return ledger.granted(event.matter, event.subject) + running.by_subject.get(
        (event.matter, event.subject), ZERO
    )


def _cap_room(clause: Clause, event: Event, ledger: Ledger, running: _Running) -> Decimal | None:
    """What the clause's cumulative and yearly caps still allow, or None when it has neither."""
    caps = clause.caps
    if caps.cumulative is None and caps.per_applicant_year is None:
        return None
    key = caps.cumulative_key or clause.id
    room: Decimal | None = None
    if caps.cumulative is not None:
        used = ledger.by_cap.get(key, ZERO) + running.by_cap.get(key, ZERO)
        room = max(ZERO, caps.cumulative - used)
    if caps.per_applicant_year is not None:
        year = (key, event.date.year)
        used = ledger.by_cap_year.get(year, ZERO) + running.by_cap_year.get(year, ZERO)
        left = max(ZERO, caps.per_applicant_year - used)
        room = left if room is None else min(room, left)
    return room


def _apply_running_caps(
    clause: Clause, event: Event, due: Decimal, ledger: Ledger, running: _Running
) -> Decimal:
    """Limit a payment by the clause's cumulative and yearly caps, and count it against them."""
    key = clause.caps.cumulative_key or clause.id
    room = _cap_room(clause, event, ledger, running)
    if room is not None:
        due = min(due, room)
    running.by_cap[key] = running.by_cap.get(key, ZERO) + due
    year_key = (key, event.date.year)
    running.by_cap_year[year_key] = running.by_cap_year.get(year_key, ZERO) + due
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
    running: _Running,
) -> Result:
    live.sort(key=_rank)
    total = sum((c.amount for c in live), ZERO)
    if strategy.total_cap is not None:
        total = min(total, strategy.total_cap)
    paid = tuple(Considered(c.clause, "granted", "可叠加：一并享受", c.amount) for c in live)
    considered.extend(paid)
    for r in live_ranges:
        considered.append(Considered(r.clause, "needs_assessment", f"需评定：{r.worth.range}"))
    due = max(ZERO, total - previously)
    running.by_subject[(event.matter, event.subject)] = (
        running.by_subject.get((event.matter, event.subject), ZERO) + due
    )
    basis = " + ".join(c.worth.basis for c in live)
    return Result(
        event_index=index,
        event=event,
        strategy=strategy.kind,
        status="eligible",
        amount=to_fen(due),
        granted=paid[0],
        basis=basis,
        entitlement=to_fen(total),
        previously_granted=to_fen(previously),
        considered=tuple(considered),
        missing=missing,
        paid_by=paid,
    )


def with_index(result: Result, index: int) -> Result:
    """The same result for another position in a request."""
    return replace(result, event_index=index)
