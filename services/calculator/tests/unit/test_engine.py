"""The engine's semantics on a small rule set: candidates, worth, settlement, the ledger."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from calculator.engine.decide import decide
from calculator.engine.model import Applicant, Event, Ledger
from calculator.engine.rules import RuleSet, compile_snapshot

REGIONS = [
    {"code": "510000", "name": "四川省", "parent": None, "level": "province"},
    {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
    {"code": "510502", "name": "江阳区", "parent": "510500", "level": "county"},
    {"code": "510521", "name": "泸县", "parent": "510500", "level": "county"},
    {"code": "510500-GX", "name": "高新区", "parent": "510500", "level": "park"},
]


def clause(cid: str, matter: str, amount: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "ref": "（一）",
        "matter": matter,
        "beneficiaries": extra.pop("beneficiaries", ["enterprise"]),
        "amount": amount,
        "quote": f"quote of {cid}",
        **extra,
    }


def document(did: str, start: str, clauses: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": did,
        "doc_no": f"{did}号",
        "jurisdiction": extra.pop("jurisdiction", ["510500"]),
        "effective_from": start,
        "effective_to": extra.pop("effective_to", None),
        "repealed_date": extra.pop("repealed_date", None),
        "clauses": clauses,
        **extra,
    }


def ruleset(*documents: dict[str, Any], matters: list[dict[str, Any]] | None = None) -> RuleSet:
    return compile_snapshot(
        {
            "version": "v-test",
            "regions": REGIONS,
            "matters": matters or [],
            "documents": list(documents),
        }
    )


PATENT = "patent.invention.granted"
OLD = document(
    "old-2015",
    "2015-08-31",
    [clause("invention", PATENT, {"kind": "per_unit", "rate": 3000, "unit": "件"})],
)
NEW = document(
    "talent-2021",
    "2021-08-24",
    [clause("invention", PATENT, {"kind": "fixed", "value": 2000})],
    effective_to="2023-08-23",
    jurisdiction=["510502", "510500-GX"],
)
ENTERPRISE = Applicant(id="91510500MA62B8XY4F", kind="enterprise", region="510502")


def event(day: str, matter: str = PATENT, quantity: int = 1, **attributes: Any) -> Event:
    return Event(
        matter=matter,
        date=dt.date.fromisoformat(day),
        subject="ZL1",
        quantity=quantity,
        attributes=attributes,
    )


class TestCandidates:
    def test_a_county_is_inside_its_city(self) -> None:
        result = decide(ENTERPRISE, [event("2016-05-10")], ruleset(OLD)).results[0]
        assert (result.status, result.amount) == ("eligible", Decimal("3000.00"))

    def test_outside_the_jurisdiction(self) -> None:
        applicant = Applicant(id="x", kind="enterprise", region="510521")
        result = decide(applicant, [event("2022-01-01")], ruleset(NEW)).results[0]
        assert result.status == "ineligible"
        assert result.considered[0].outcome == "out_of_jurisdiction"
        assert result.considered[0].reason == "申请主体所在地不在适用范围（江阳区、高新区）内"

    @pytest.mark.parametrize(
        ("day", "in_force"),
        [("2021-08-23", False), ("2021-08-24", True), ("2023-08-23", True), ("2023-08-24", False)],
    )
    def test_validity_is_judged_at_the_event_date(self, day: str, in_force: bool) -> None:
        result = decide(ENTERPRISE, [event(day)], ruleset(NEW)).results[0]
        assert (result.status == "eligible") is in_force

    def test_repealed_from_the_repeal_date(self) -> None:
        repealed = {**OLD, "repealed_date": "2020-01-01"}
        rules = ruleset(repealed)
        assert decide(ENTERPRISE, [event("2019-12-31")], rules).results[0].status == "eligible"
        last = decide(ENTERPRISE, [event("2020-01-01")], rules).results[0]
        assert last.considered[0].outcome == "not_in_force"

    def test_beneficiary_kind(self) -> None:
        person = Applicant(id="x", kind="individual", region="510502")
        result = decide(person, [event("2016-05-10")], ruleset(OLD)).results[0]
        assert result.considered[0].outcome == "beneficiary_mismatch"

    def test_condition_and_unknown(self) -> None:
        platform = document(
            "p",
            "2015-01-01",
            [
                clause(
                    "national",
                    "rd_platform.recognized",
                    {"kind": "fixed", "value": 500000},
                    condition="event.level == 'national'",
                )
            ],
        )
        rules = ruleset(platform)
        met = decide(
            ENTERPRISE, [event("2016-01-01", "rd_platform.recognized", level="national")], rules
        )
        assert met.results[0].amount == Decimal("500000.00")
        unmet = decide(
            ENTERPRISE, [event("2016-01-01", "rd_platform.recognized", level="city")], rules
        )
        assert unmet.results[0].considered[0].outcome == "condition_not_met"
        unknown = decide(ENTERPRISE, [event("2016-01-01", "rd_platform.recognized")], rules)
        assert (unknown.results[0].status, unknown.results[0].missing) == ("unknown", ("level",))

    def test_an_unknown_condition_asks_for_what_the_amount_needs_too(self) -> None:
        """Both at once: the client should not learn of the second on its next request."""
        testing = document(
            "testing-2016",
            "2016-01-01",
            [
                clause(
                    "share",
                    "testing_fee.incurred",
                    {"kind": "percentage", "rate": "0.3", "base": "fee_yuan"},
                    condition="event.accredited",
                )
            ],
        )
        result = decide(
            ENTERPRISE, [event("2016-06-01", "testing_fee.incurred")], ruleset(testing)
        ).results[0]
        assert (result.status, result.missing) == ("unknown", ("accredited", "fee_yuan"))
        given = decide(
            ENTERPRISE,
            [event("2016-06-01", "testing_fee.incurred", accredited=True, fee_yuan=1000)],
            ruleset(testing),
        ).results[0]
        assert given.amount == Decimal("300.00")

    def test_exclusion_takes_the_year_away(self) -> None:
        excluding = {
            **OLD,
            "exclusions": [
                {
                    "id": "incident",
                    "ref": "（二十六）",
                    "quote": "q",
                    "when": "event.year in applicant.major_incident_years",
                }
            ],
        }
        rules = ruleset(excluding)
        flagged = Applicant(
            id="x", kind="enterprise", region="510502", attributes={"major_incident_years": [2016]}
        )
        assert (
            decide(flagged, [event("2016-05-10")], rules).results[0].considered[0].outcome
            == "excluded"
        )
        assert decide(flagged, [event("2017-05-10")], rules).results[0].status == "eligible"
        assert decide(ENTERPRISE, [event("2016-05-10")], rules).results[0].status == "eligible"


class TestAmounts:
    def test_per_unit_with_a_cap_per_subject(self) -> None:
        foreign = document(
            "f",
            "2015-01-01",
            [
                clause(
                    "foreign",
                    "patent.foreign.granted",
                    {
                        "kind": "per_unit",
                        "rate": 5000,
                        "unit": "国家",
                        "units_from": "countries",
                        "max_units_per_subject": 2,
                    },
                )
            ],
        )
        result = decide(
            ENTERPRISE,
            [event("2016-01-01", "patent.foreign.granted", countries=5)],
            ruleset(foreign),
        )
        assert result.results[0].amount == Decimal("10000.00")

    def test_percentage_rounds_half_up_once(self) -> None:
        fee = document(
            "t",
            "2015-01-01",
            [
                clause(
                    "fee",
                    "testing_fee.incurred",
                    {"kind": "percentage", "rate": "0.3", "base": "fee_yuan"},
                )
            ],
        )
        result = decide(
            ENTERPRISE,
            [event("2016-01-01", "testing_fee.incurred", fee_yuan="100.05")],
            ruleset(fee),
        )
        assert result.results[0].amount == Decimal("30.02")  # 30.015 → 30.02

    def test_tiers(self) -> None:
        tiered = document(
            "t",
            "2015-01-01",
            [
                clause(
                    "sales",
                    "patent.industrialized",
                    {
                        "kind": "tiered",
                        "attribute": "sales_yuan",
                        "tiers": [
                            {"at_least": 20000000, "amount": {"kind": "fixed", "value": 100000}},
                            {"at_least": 50000000, "amount": {"kind": "fixed", "value": 200000}},
                        ],
                    },
                )
            ],
        )
        rules = ruleset(tiered)

        def pay(sales: int) -> Any:
            return decide(
                ENTERPRISE, [event("2016-01-01", "patent.industrialized", sales_yuan=sales)], rules
            ).results[0]

        assert pay(19_999_999).considered[0].outcome == "condition_not_met"
        assert pay(20_000_000).amount == Decimal("100000.00")
        assert pay(50_000_000).amount == Decimal("200000.00")

    def test_range_needs_assessment_unless_assessed_inside(self) -> None:
        listing = document(
            "l",
            "2015-01-01",
            [
                clause(
                    "listing", "listing.completed", {"kind": "range", "min": 250000, "max": 2500000}
                )
            ],
        )
        rules = ruleset(listing)
        open_ = decide(ENTERPRISE, [event("2016-01-01", "listing.completed")], rules).results[0]
        assert (open_.status, open_.range) == (
            "needs_assessment",
            (Decimal("250000.00"), Decimal("2500000.00")),
        )
        assessed = decide(
            ENTERPRISE, [event("2016-01-01", "listing.completed", assessed_amount=300000)], rules
        )
        assert assessed.results[0].amount == Decimal("300000.00")
        outside = decide(
            ENTERPRISE, [event("2016-01-01", "listing.completed", assessed_amount=9)], rules
        )
        assert outside.results[0].status == "needs_assessment"

    def test_an_amount_of_zero_pays_nothing_and_says_why(self) -> None:
        assessed = document(
            "l",
            "2015-01-01",
            [clause("c", "listing.completed", {"kind": "range", "min": 0, "max": 9})],
        )
        zero = decide(
            ENTERPRISE, [event("2016-01-01", "listing.completed", assessed_amount=0)],
            ruleset(assessed),
        ).results[0]  # fmt: skip
        assert (zero.status, zero.amount) == ("ineligible", Decimal(0))
        assert zero.considered[0].outcome == "condition_not_met"
        assert zero.considered[0].reason.startswith("金额为 0")
        below_a_fen = decide(
            ENTERPRISE, [event("2016-01-01", "listing.completed", assessed_amount="0.004")],
            ruleset(assessed),
        ).results[0]  # fmt: skip
        assert (below_a_fen.status, below_a_fen.amount) == ("ineligible", Decimal(0))
        assert below_a_fen.considered[0].outcome == "condition_not_met"

    def test_periodic_has_a_schedule(self) -> None:
        allowance = document(
            "a",
            "2021-01-01",
            [
                clause(
                    "doctor",
                    "talent.living_allowance",
                    {"kind": "periodic", "per_period": 2000, "period": "month", "periods": 36},
                    beneficiaries=["individual"],
                )
            ],
        )
        person = Applicant(id="x", kind="individual", region="510502")
        result = decide(
            person, [event("2021-01-31", "talent.living_allowance")], ruleset(allowance)
        ).results[0]
        assert result.amount == Decimal("72000.00")
        assert len(result.schedule) == 36
        assert result.schedule[1].due == dt.date(2021, 2, 28)

    @pytest.mark.parametrize(
        ("per_period", "periods", "caps", "before", "amount", "schedule"),
        [
            # A cap on the event pays the first instalments, the last of them in part.
            ("2000", 36, {"per_event": 5000}, "0", "5000.00", ["2000.00", "2000.00", "1000.00"]),
            # A top-up: what was paid covers the first instalments, and one in part.
            ("2000", 36, {}, "69000", "3000.00", ["1000.00", "2000.00"]),
            # Thirds of a fen: each instalment is rounded where its running total is, so that
            # together they are the amount.
            ("333.335", 3, {}, "0", "1000.01", ["333.34", "333.33", "333.34"]),
            # Everything paid already: nothing is scheduled.
            ("2000", 3, {}, "6000", "0.00", []),
        ],
    )
    def test_the_schedule_pays_what_is_due(
        self,
        per_period: str,
        periods: int,
        caps: dict[str, int],
        before: str,
        amount: str,
        schedule: list[str],
    ) -> None:
        allowance = document(
            "a",
            "2021-01-01",
            [
                clause(
                    "allowance",
                    "talent.living_allowance",
                    {"kind": "periodic", "per_period": per_period, "period": "month",
                     "periods": periods},
                    beneficiaries=["individual"],
                    caps=caps,
                )
            ],
        )  # fmt: skip
        person = Applicant(id="x", kind="individual", region="510502")
        day = event("2021-01-31", "talent.living_allowance")
        ledger = Ledger(by_subject={("talent.living_allowance", day.subject): Decimal(before)})
        result = decide(person, [day], ruleset(allowance), ledger).results[0]
        assert result.amount == Decimal(amount)
        assert [str(p.amount) for p in result.schedule] == schedule
        assert sum((p.amount for p in result.schedule), Decimal(0)) == result.amount


class TestSettlement:
    def test_highest_standard_wins_between_documents(self) -> None:
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(OLD, NEW)).results[0]
        assert result.amount == Decimal("3000.00")
        outcomes = {c.clause.document.id: c.outcome for c in result.considered}
        assert outcomes == {"old-2015": "granted", "talent-2021": "lower_standard"}

    def test_supersession_runs_through_a_document_that_is_no_candidate(self) -> None:
        # 2020 supersedes 2018, which superseded 2015; 2018's clause does not apply here.
        middle = document(
            "mid-2018",
            "2018-01-01",
            [clause("invention", PATENT, {"kind": "fixed", "value": 9000},
                    condition="event.quantity > 100")],
            supersedes=[{"document": "old-2015", "matters": None}],
        )  # fmt: skip
        newest = document(
            "new-2020",
            "2020-01-01",
            [clause("invention", PATENT, {"kind": "fixed", "value": 500})],
            supersedes=[{"document": "mid-2018", "matters": [PATENT]}],
        )
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(OLD, middle, newest)).results[0]
        assert result.amount == Decimal("500.00")
        outcomes = {c.clause.document.id: c.outcome for c in result.considered}
        assert outcomes == {
            "old-2015": "superseded", "mid-2018": "condition_not_met", "new-2020": "granted",
        }  # fmt: skip

    def test_supersession_runs_through_a_document_without_clauses(self) -> None:
        # A notice that repeals 2015 and is itself replaced by 2020: 2020 supersedes 2015.
        notice = document(
            "notice-2018", "2018-01-01", [], supersedes=[{"document": "old-2015", "matters": None}]
        )
        newest = document(
            "new-2020",
            "2020-01-01",
            [clause("invention", PATENT, {"kind": "fixed", "value": 500})],
            supersedes=[{"document": "notice-2018", "matters": None}],
        )
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(OLD, notice, newest)).results[0]
        assert result.amount == Decimal("500.00")
        outcomes = {c.clause.document.id: c.outcome for c in result.considered}
        assert outcomes == {"old-2015": "superseded", "new-2020": "granted"}

    def test_a_superseded_range_shows_no_amount(self) -> None:
        """It has none until assessed; 0.00 read as a sum that was weighed."""
        assessed = document(
            "old-range",
            "2015-01-01",
            [clause("invention", PATENT, {"kind": "range", "min": 1000, "max": 9000})],
        )
        newer = {**NEW, "supersedes": [{"document": "old-range", "matters": None}]}
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(assessed, newer)).results[0]
        (superseded,) = [c for c in result.considered if c.outcome == "superseded"]
        assert superseded.amount is None

    def test_newest_supersedes_when_linked(self) -> None:
        newer = {**NEW, "supersedes": [{"document": "old-2015", "matters": None}]}
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(OLD, newer)).results[0]
        assert result.amount == Decimal("2000.00")
        outcomes = {c.clause.document.id: c.outcome for c in result.considered}
        assert outcomes == {"old-2015": "superseded", "talent-2021": "granted"}

    @pytest.mark.parametrize(
        ("paid", "status", "entitlement"),
        [("1000.00", "eligible", "1000.00"), ("999.99", "needs_assessment", "0.00")],
    )
    def test_a_range_paid_to_its_top_asks_no_assessment(
        self, paid: str, status: str, entitlement: str
    ) -> None:
        ranged = {**NEW, "clauses": [clause("invention", PATENT, {"kind": "range", "min": 100,
                                                                   "max": 1000})]}  # fmt: skip
        ledger = Ledger(by_subject={(PATENT, "ZL1"): Decimal(paid)})
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(ranged), ledger).results[0]
        assert (result.status, result.amount) == (status, Decimal(0))
        assert result.entitlement == Decimal(entitlement)
        assert result.previously_granted == Decimal(paid)
        if status == "eligible":
            assert result.range is None
            assert result.granted is not None
            assert result.granted.reason == "台账已发放 1000.00 元，不低于区间上限，无需评定"

    def test_a_link_for_no_matter_supersedes_nothing(self) -> None:
        """As the registry reads it when it looks for cycles: a document recorded with
        `matters: []` (refused since) must not drop two documents that name each other."""
        newer = {**NEW, "supersedes": [{"document": "old-2015", "matters": []}]}
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(OLD, newer)).results[0]
        assert result.amount == Decimal("3000.00")
        assert "superseded" not in {c.outcome for c in result.considered}

    def test_equal_amounts_go_to_the_newer_document(self) -> None:
        same = document(
            "same-2019",
            "2019-01-01",
            [clause("invention", PATENT, {"kind": "fixed", "value": 3000})],
        )
        result = decide(ENTERPRISE, [event("2020-01-01")], ruleset(OLD, same)).results[0]
        assert result.granted is not None
        assert result.granted.clause.document.id == "same-2019"
        (lost,) = [c for c in result.considered if c.outcome == "lower_standard"]
        assert lost.reason == "标准相同，时间从新：适用 same-2019号"

    def test_cumulative_strategy_pays_all(self) -> None:
        matters = [
            {
                "key": PATENT,
                "name": "x",
                "beneficiaries": ["enterprise"],
                "attributes": {},
                "strategy": {"kind": "cumulative", "total_cap": 4000},
            }
        ]
        result = decide(
            ENTERPRISE, [event("2022-01-01")], ruleset(OLD, NEW, matters=matters)
        ).results[0]
        assert (result.strategy, result.amount) == ("cumulative", Decimal("4000.00"))

    @pytest.mark.parametrize(
        ("other", "total_cap", "range_"),
        [
            ({"kind": "range", "min": 10, "max": 60}, None, ("3010.00", "3060.00")),
            ({"kind": "range", "min": 10, "max": 60}, 3040, ("3010.00", "3040.00")),
        ],
    )
    def test_cumulative_with_a_range_is_assessed_as_a_sum(
        self, other: dict[str, Any], total_cap: int | None, range_: tuple[str, str]
    ) -> None:
        ranged = {**NEW, "clauses": [clause("invention", PATENT, other)]}
        strategy: dict[str, Any] = {"kind": "cumulative"}
        if total_cap is not None:
            strategy["total_cap"] = total_cap
        matters = [{"key": PATENT, "name": "x", "beneficiaries": ["enterprise"],
                    "attributes": {}, "strategy": strategy}]  # fmt: skip
        rules = ruleset(OLD, ranged, matters=matters)
        pending = decide(ENTERPRISE, [event("2022-01-01")], rules).results[0]
        assert (pending.status, pending.amount) == ("needs_assessment", Decimal(0))
        assert pending.range == tuple(map(Decimal, range_))
        assert {c.outcome for c in pending.considered} == {"needs_assessment"}
        assessed = decide(ENTERPRISE, [event("2022-01-01", assessed_amount=20)], rules).results[0]
        assert (assessed.status, assessed.amount) == ("eligible", Decimal("3020.00"))

    def test_cumulative_paid_to_the_top_of_its_sum_asks_no_assessment(self) -> None:
        """3000 fixed and a range up to 60: once the ledger holds 3060, nothing is due."""
        ranged = {**NEW, "clauses": [clause("invention", PATENT, {"kind": "range", "min": 10,
                                                                   "max": 60})]}  # fmt: skip
        matters = [{"key": PATENT, "name": "x", "beneficiaries": ["enterprise"],
                    "attributes": {}, "strategy": {"kind": "cumulative"}}]  # fmt: skip
        rules = ruleset(OLD, ranged, matters=matters)
        for paid, status in (("3060.00", "eligible"), ("3059.99", "needs_assessment")):
            ledger = Ledger(by_subject={(PATENT, "ZL1"): Decimal(paid)})
            result = decide(ENTERPRISE, [event("2022-01-01")], rules, ledger).results[0]
            assert (result.status, result.amount) == (status, Decimal(0)), paid
        assert result.range is not None
        done = decide(
            ENTERPRISE,
            [event("2022-01-01")],
            rules,
            Ledger(by_subject={(PATENT, "ZL1"): Decimal(3060)}),
        ).results[0]
        assert done.range is None
        assert done.entitlement == Decimal("3060.00")
        assert {c.outcome for c in done.considered} == {"granted"}
        assert done.granted is not None
        assert "无需评定" in done.granted.reason

    def test_cumulative_with_a_periodic_amount_has_its_schedule(self) -> None:
        monthly = {"kind": "periodic", "per_period": 10, "period": "month", "periods": 3}
        periodic = {**NEW, "clauses": [clause("invention", PATENT, monthly)]}
        matters = [{"key": PATENT, "name": "x", "beneficiaries": ["enterprise"],
                    "attributes": {}, "strategy": {"kind": "cumulative"}}]  # fmt: skip
        rules = ruleset(OLD, periodic, matters=matters)
        result = decide(ENTERPRISE, [event("2022-01-31")], rules).results[0]
        assert result.amount == Decimal("3030.00")
        assert [(p.period, p.due.isoformat(), p.amount) for p in result.schedule] == [
            (1, "2022-01-31", Decimal("3010.00")),
            (2, "2022-02-28", Decimal("10.00")),
            (3, "2022-03-31", Decimal("10.00")),
        ]
        topped = decide(
            ENTERPRISE,
            [event("2022-01-31")],
            rules,
            Ledger(by_subject={(PATENT, "ZL1"): Decimal(3015)}),
        ).results[0]
        assert topped.amount == Decimal("15.00")
        assert [(p.period, p.amount) for p in topped.schedule] == [
            (2, Decimal("5.00")),
            (3, Decimal("10.00")),
        ]

    def test_priority_strategy_names_the_winner(self) -> None:
        matters = [
            {
                "key": PATENT,
                "name": "x",
                "beneficiaries": ["enterprise"],
                "attributes": {},
                "strategy": {"kind": "priority", "priority": ["talent-2021"]},
            }
        ]
        result = decide(
            ENTERPRISE, [event("2022-01-01")], ruleset(OLD, NEW, matters=matters)
        ).results[0]
        assert result.amount == Decimal("2000.00")

    @pytest.mark.parametrize(
        ("named", "other", "status", "amount", "range_"),
        [
            # The named document's fixed amount beats a range reaching higher elsewhere.
            ({"kind": "fixed", "value": 100}, {"kind": "range", "min": 0, "max": 1000},
             "eligible", "100.00", None),
            # The named document's range is assessed, whatever the other's fixed amount.
            ({"kind": "range", "min": 0, "max": 500}, {"kind": "fixed", "value": 800},
             "needs_assessment", "0.00", ("0.00", "500.00")),
        ],
    )  # fmt: skip
    def test_priority_settles_ranges_by_the_order_too(
        self,
        named: dict[str, Any],
        other: dict[str, Any],
        status: str,
        amount: str,
        range_: tuple[str, str] | None,
    ) -> None:
        documents = [
            document("named", "2015-01-01", [clause("c", PATENT, named)]),
            document("other", "2020-01-01", [clause("c", PATENT, other)]),
        ]
        result = decide(
            ENTERPRISE, [event("2022-01-01")], ruleset(*documents, matters=priority(["named"]))
        ).results[0]
        assert (result.status, result.amount) == (status, Decimal(amount))
        assert result.range == (None if range_ is None else tuple(map(Decimal, range_)))
        outcomes = {c.clause.document.id: c.outcome for c in result.considered}
        assert outcomes["other"] == "not_cumulative"

    def test_a_priority_range_paid_to_its_top_asks_no_assessment(self) -> None:
        documents = [
            document("named", "2015-01-01", [clause("c", PATENT, {"kind": "range", "min": 0,
                                                                   "max": 500})]),
            document("other", "2020-01-01", [clause("c", PATENT, {"kind": "fixed",
                                                                   "value": 800})]),
        ]  # fmt: skip
        rules = ruleset(*documents, matters=priority(["named"]))
        ledger = Ledger(by_subject={(PATENT, "ZL1"): Decimal(500)})
        result = decide(ENTERPRISE, [event("2022-01-01")], rules, ledger).results[0]
        assert (result.status, result.amount, result.range) == ("eligible", Decimal(0), None)
        outcomes = {c.clause.document.id: c.outcome for c in result.considered}
        assert outcomes == {"named": "granted", "other": "not_cumulative"}

    def test_a_superseding_clause_not_yet_known_holds_the_older_back(self) -> None:
        older = document(
            "old", "2015-01-01", [clause("c", PATENT, {"kind": "fixed", "value": 1000})]
        )
        newer = document(
            "new",
            "2020-01-01",
            [clause("c", PATENT, {"kind": "fixed", "value": 300}, condition="event.x == 1")],
            supersedes=[{"document": "old", "matters": None}],
        )
        rules = ruleset(older, newer)
        pending = decide(ENTERPRISE, [event("2022-01-01")], rules).results[0]
        assert (pending.status, pending.amount, pending.missing) == ("unknown", Decimal(0), ("x",))
        assert {c.clause.document.id: c.outcome for c in pending.considered} == {
            "old": "unknown", "new": "unknown",
        }  # fmt: skip
        known = decide(ENTERPRISE, [event("2022-01-01", x=1)], rules).results[0]
        assert (known.status, known.amount) == ("eligible", Decimal("300.00"))
        assert {c.clause.document.id: c.outcome for c in known.considered} == {
            "old": "superseded", "new": "granted",
        }  # fmt: skip
        # Without a link the older is paid meanwhile: a later answer can only top it up.
        unlinked = {**newer, "supersedes": []}
        paid = decide(ENTERPRISE, [event("2022-01-01")], ruleset(older, unlinked)).results[0]
        assert (paid.status, paid.amount) == ("eligible", Decimal("1000.00"))

    def test_a_named_clause_not_yet_known_holds_the_others_back(self) -> None:
        named = document(
            "named", "2015-01-01",
            [clause("c", PATENT, {"kind": "fixed", "value": 100}, condition="event.x == 1")],
        )  # fmt: skip
        other = document(
            "other", "2020-01-01", [clause("c", PATENT, {"kind": "fixed", "value": 900})]
        )
        rules = ruleset(named, other, matters=priority(["named"]))
        pending = decide(ENTERPRISE, [event("2022-01-01")], rules).results[0]
        assert (pending.status, pending.amount) == ("unknown", Decimal(0))
        held = {c.clause.document.id: c.reason for c in pending.considered}
        assert held["other"] == "待定：named号 的条款缺少属性，若适用则优先于本条"
        known = decide(ENTERPRISE, [event("2022-01-01", x=2)], rules).results[0]
        assert (known.status, known.amount) == ("eligible", Decimal("900.00"))
        assert known.granted is not None
        assert known.granted.reason == "优先适用的文件均不适用；唯一符合条件的条款"

    @pytest.mark.parametrize(
        ("linked", "reason"),
        [(True, "时间从新：其他符合条件的条款已被取代"), (False, "时间从新、标准从高：金额最高")],
    )
    def test_the_winners_reason_says_why_the_others_lost(self, linked: bool, reason: str) -> None:
        newer = {**NEW, "supersedes": [{"document": "old-2015", "matters": None}] if linked else []}
        cheaper = {
            **newer,
            "clauses": [clause("invention", PATENT, {"kind": "fixed", "value": 5000})],
        }
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(OLD, cheaper)).results[0]
        assert result.granted is not None
        assert (result.granted.clause.document.id, result.granted.reason) == ("talent-2021", reason)
        alone = decide(ENTERPRISE, [event("2016-01-01")], ruleset(OLD, cheaper)).results[0]
        assert alone.granted is not None
        assert alone.granted.reason == "唯一符合条件的条款"


def priority(order: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "key": PATENT,
            "name": "x",
            "beneficiaries": ["enterprise"],
            "attributes": {},
            "strategy": {"kind": "priority", "priority": order},
        }
    ]


class TestLedger:
    def test_top_up_pays_the_difference(self) -> None:
        ledger = Ledger(by_subject={(PATENT, "ZL1"): Decimal("2000")})
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(OLD, NEW), ledger).results[0]
        assert (result.amount, result.previously_granted) == (
            Decimal("1000.00"),
            Decimal("2000.00"),
        )

    def test_nothing_left_is_eligible_zero(self) -> None:
        ledger = Ledger(by_subject={(PATENT, "ZL1"): Decimal("3000")})
        result = decide(ENTERPRISE, [event("2022-01-01")], ruleset(OLD), ledger).results[0]
        assert (result.status, result.amount) == ("eligible", Decimal("0.00"))

    def test_one_request_never_pays_a_subject_twice(self) -> None:
        decision = decide(ENTERPRISE, [event("2022-01-01"), event("2022-02-01")], ruleset(OLD))
        assert decision.total == Decimal("3000.00")

    def test_cumulative_cap_counts_earlier_grants(self) -> None:
        capped = document(
            "c",
            "2015-01-01",
            [
                clause(
                    "project",
                    "startup.project_incubated",
                    {"kind": "fixed", "value": 10000},
                    caps={"cumulative": 100000, "cumulative_key": "lead"},
                )
            ],
        )
        ledger = Ledger(by_cap={"lead": Decimal("95000")})
        result = decide(
            ENTERPRISE, [event("2016-01-01", "startup.project_incubated")], ruleset(capped), ledger
        )
        assert result.results[0].amount == Decimal("5000.00")
        assert result.results[0].basis == "定额 10000.00 元，受上限所限为 5000.00 元"
        used_up = decide(
            ENTERPRISE,
            [event("2016-01-01", "startup.project_incubated")],
            ruleset(capped),
            Ledger(by_cap={"lead": Decimal("100000")}),
        ).results[0]
        assert used_up.amount == Decimal("0.00")
        assert used_up.granted is not None
        assert used_up.granted.reason == "唯一符合条件的条款；累计或年度上限已用尽"
