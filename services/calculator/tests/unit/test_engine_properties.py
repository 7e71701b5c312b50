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
# Amounts with fen, and thirds of a fen once multiplied, for the rounding.
fen = st.integers(min_value=0, max_value=100_000_000).map(lambda f: Decimal(f) / 100)
day = st.dates(min_value=dt.date(2014, 1, 1), max_value=dt.date(2025, 12, 31))

amounts = st.one_of(
    money.map(lambda v: {"kind": "fixed", "value": str(v)}),
    st.builds(
        lambda r, m: {"kind": "per_unit", "rate": str(r), "unit": "件", "max_units_per_subject": m},
        fen,
        st.none() | st.integers(1, 5),
    ),
    st.builds(
        lambda lo, span: {"kind": "range", "min": str(lo), "max": str(lo + span)}, money, money
    ),
)


caps = st.fixed_dictionaries(
    {},
    optional={
        "per_event": money.map(str),
        "per_applicant_year": money.filter(bool).map(str),
        "cumulative": money.filter(bool).map(str),
        "cumulative_key": st.just("shared"),  # running caps several clauses count together
    },
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
            "caps": draw(caps),
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


@settings(max_examples=500, deadline=None)
@given(scenarios(), st.randoms())
def test_no_result_depends_on_event_order(scenario: Any, random: Any) -> None:
    """Caps and 补差 are counted as the events happened, not as the request lists them."""
    rules, events, ledger = scenario
    shuffled = list(events)
    random.shuffle(shuffled)
    listed = decide(APPLICANT, events, rules, ledger)
    reordered = decide(APPLICANT, shuffled, rules, ledger)
    assert listed.total == reordered.total
    assert sorted((repr(r.event), r.amount) for r in listed.results) == sorted(
        (repr(r.event), r.amount) for r in reordered.results
    )


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_one_subject_is_paid_at_most_its_best_entitlement_to_the_fen(scenario: Any) -> None:
    """不重复 within a request: what the events of one subject pay, with what the ledger
    granted, never exceeds the best entitlement among them, counted in fen as it is paid."""
    rules, events, ledger = scenario
    paid: dict[tuple[str, str], Decimal] = {}
    best: dict[tuple[str, str], Decimal] = {}
    for result in decide(APPLICANT, events, rules, ledger).results:
        key = (result.event.matter, result.event.subject)
        assert result.amount == result.amount.quantize(Decimal("0.01"))
        paid[key] = paid.get(key, Decimal(0)) + result.amount
        best[key] = max(best.get(key, Decimal(0)), result.entitlement)
    for key, amount in paid.items():
        if amount:
            assert amount + ledger.granted(*key) <= max(best[key], ledger.granted(*key))


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_the_same_input_gives_the_same_decision(scenario: Any) -> None:
    rules, events, ledger = scenario
    assert decide(APPLICANT, events, rules, ledger) == decide(APPLICANT, events, rules, ledger)
