"""Properties that hold for any rule set and any events (Hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from calculator.engine.decide import decide
from calculator.engine.model import Applicant, Event, Ledger
from calculator.engine.rules import compile_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

REGIONS = [
    {"code": "510000", "name": "四川省", "parent": None, "level": "province"},
    {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
    {"code": "510502", "name": "江阳区", "parent": "510500", "level": "county"},
    {"code": "510521", "name": "泸县", "parent": "510500", "level": "county"},
]
MATTERS = ["m.a", "m.b"]
money = st.integers(min_value=0, max_value=1_000_000).map(Decimal)
day = st.dates(min_value=dt.date(2014, 1, 1), max_value=dt.date(2025, 12, 31))

amounts = st.one_of(
    money.map(lambda v: {"kind": "fixed", "value": str(v)}),
    st.builds(
        lambda r, m: {"kind": "per_unit", "rate": str(r), "unit": "件", "max_units_per_subject": m},
        money,
        st.none() | st.integers(1, 5),
    ),
    st.builds(
        lambda lo, span: {"kind": "range", "min": str(lo), "max": str(lo + span)}, money, money
    ),
)


@st.composite
def documents(draw: Any, index: int) -> dict[str, Any]:
    start = draw(day)
    end = draw(st.none() | st.dates(min_value=start, max_value=dt.date(2026, 12, 31)))
    clauses = [
        {
            "id": f"c{i}",
            "ref": "（一）",
            "matter": draw(st.sampled_from(MATTERS)),
            "beneficiaries": ["enterprise"],
            "amount": draw(amounts),
            "caps": {"per_event": str(draw(money))} if draw(st.booleans()) else {},
            "quote": "q",
        }
        for i in range(draw(st.integers(1, 3)))
    ]
    return {
        "id": f"d{index}",
        "doc_no": None,
        "jurisdiction": [draw(st.sampled_from(["510500", "510502", "510521"]))],
        "effective_from": start.isoformat(),
        "effective_to": end.isoformat() if end else None,
        "repealed_date": None,
        "supersedes": [{"document": "d0", "matters": None}]
        if index and draw(st.booleans())
        else [],
        "clauses": clauses,
    }


@st.composite
def scenarios(draw: Any) -> tuple[Any, list[Event], Ledger]:
    count = draw(st.integers(1, 4))
    docs = [draw(documents(i)) for i in range(count)]
    rules = compile_snapshot({"version": "p", "regions": REGIONS, "matters": [], "documents": docs})
    events = [
        Event(
            matter=draw(st.sampled_from(MATTERS)),
            date=draw(day),
            subject=draw(st.sampled_from(["s1", "s2"])),
            quantity=draw(st.integers(1, 10)),
        )
        for _ in range(draw(st.integers(1, 5)))
    ]
    granted = {(m, s): draw(money) for m in MATTERS for s in ("s1", "s2") if draw(st.booleans())}
    return rules, events, Ledger(by_subject=granted)


APPLICANT = Applicant(id="91510500MA62B8XY4F", kind="enterprise", region="510502")


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_never_negative_and_never_above_the_best_candidate(scenario: Any) -> None:
    rules, events, ledger = scenario
    for result in decide(APPLICANT, events, rules, ledger).results:
        assert result.amount >= 0
        offered = [c.amount for c in result.considered if c.amount is not None]
        assert result.amount <= max(offered, default=Decimal(0))
        assert result.amount <= result.entitlement


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.randoms())
def test_the_total_does_not_depend_on_event_order(scenario: Any, random: Any) -> None:
    rules, events, ledger = scenario
    shuffled = list(events)
    random.shuffle(shuffled)
    assert (
        decide(APPLICANT, events, rules, ledger).total
        == decide(APPLICANT, shuffled, rules, ledger).total
    )


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_the_same_input_gives_the_same_decision(scenario: Any) -> None:
    rules, events, ledger = scenario
    assert decide(APPLICANT, events, rules, ledger) == decide(APPLICANT, events, rules, ledger)
