"""Whole-registry decisions as a policy officer states them: the YAML cases under decisions/.

A case is an applicant, what the ledger already granted, and one or more events. Each event is
decided by the engine with every clause of every policy file (not reduced to one clause), and
its expectation says the status, the amount, the clause that pays and what became of the
others (时间从新、标准从高、不重复, jurisdiction, validity, exclusions; see
/work/shared/spec/semantics.md).

Every case carries a `why` paragraph. Passages of the source texts are quoted there in 「」:
each one is checked against the quotes of the clauses (and exclusion rules) of the document
named last before it (by 文号, registry id or title), so the reasoning cannot drift from the
registry. Other quotation marks (“”) are free text and are not checked.

A case the engine gets wrong carries `known_defect: <one line>`: it still states what the
semantics require, and runs as a strict expected failure until the engine is fixed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from calculator.engine.decide import decide
from calculator.engine.model import Applicant, Clause, Event, Ledger, Result
from calculator.engine.rules import RuleSet, compile_snapshot
from registry.policy_files.loader import read_policy_dir
from subsidy_common.identifiers import IdentifierInvalid, validate_ric, validate_uscc

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted((ROOT / "tests" / "scenarios" / "decisions").glob("*.yaml"))

CASE_KEYS = {"name", "why", "applicant", "ledger", "events", "known_defect"}
APPLICANT_KEYS = {"kind", "id", "region", "name", "attributes"}
LEDGER_KEYS = {"matter", "subject", "amount", "clause", "date", "note", "attributes"}
EVENT_KEYS = {"matter", "date", "subject", "quantity", "attributes", "expect"}
EXPECT_KEYS = {
    "status",
    "amount",
    "granted",
    "outcomes",
    "range",
    "missing",
    "entitlement",
    "previously_granted",
}
STATUSES = {"eligible", "ineligible", "needs_assessment", "unknown"}
OUTCOMES = {
    "granted",
    "lower_standard",
    "not_in_force",
    "out_of_jurisdiction",
    "beneficiary_mismatch",
    "condition_not_met",
    "excluded",
    "unknown",
    "needs_assessment",
    "unspecified",
    "non_cash",
}
QUOTE = re.compile(r"「([^「」]+)」")
SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class CitedDocument:
    """What a `why` paragraph may cite: a document's names and the passages it quotes."""

    id: str
    names: tuple[str, ...]
    quotes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Registry:
    rules: RuleSet
    documents: Mapping[str, CitedDocument]


@cache
def registry() -> Registry:
    """The repository's policy files, compiled as in test_clause_scenarios.py."""
    policy_set = read_policy_dir(ROOT / "policies")
    documents = [d.model_dump(mode="json") for _, d in policy_set.documents]
    snapshot = {
        "version": "policy-files",
        "regions": [r.model_dump(mode="json") for r in policy_set.regions.regions],
        "matters": [m.model_dump(mode="json") for m in policy_set.matters.matters],
        "documents": documents,
    }
    cited = {}
    for data in documents:
        names = tuple(n for n in (data["id"], data.get("doc_no"), data.get("title")) if n)
        quotes = tuple(
            _flat(item["quote"])
            for item in [*data.get("clauses", ()), *(data.get("exclusions") or ())]
        )
        cited[data["id"]] = CitedDocument(id=data["id"], names=names, quotes=quotes)
    return Registry(rules=compile_snapshot(snapshot), documents=cited)


def _flat(text: str) -> str:
    return SPACE.sub("", text)


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = []
    for path in CASES:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert set(data) == {"cases"}, f"{path.name}: a file holds only `cases`"
        cases.extend((path.stem, case) for case in data["cases"])
    return cases


def case_params(with_defects: bool) -> list[Any]:
    params = []
    for stem, case in load_cases():
        marks = []
        if with_defects and case.get("known_defect"):
            marks.append(pytest.mark.xfail(strict=True, reason=str(case["known_defect"])))
        params.append(pytest.param(case, id=f"{stem}:{case['name']}", marks=marks))
    return params


def clause_by_id(clause_id: str) -> Clause:
    for clauses in registry().rules.clauses.values():
        for clause in clauses:
            if clause.id == clause_id:
                return clause
    raise AssertionError(f"no clause {clause_id} in the policy files")


# -- the case as written ---------------------------------------------------------------------


def cited_passages(why: str) -> Iterator[tuple[str, str | None]]:
    """Each 「quoted passage」 with the document named last before it (None if none is)."""
    documents = registry().documents.values()
    for match in QUOTE.finditer(why):
        before = why[: match.start()]
        best: tuple[int, str] | None = None
        for document in documents:
            for name in document.names:
                at = before.rfind(name)
                if at >= 0 and (best is None or at + len(name) > best[0]):
                    best = (at + len(name), document.id)
        yield match.group(1), best[1] if best else None


@pytest.mark.parametrize("case", case_params(with_defects=False))
def test_case_is_well_formed(case: dict[str, Any]) -> None:
    """The case says what it needs, with real identifiers, and quotes the registry exactly."""
    assert set(case) <= CASE_KEYS, f"unknown keys {set(case) - CASE_KEYS}"
    assert {"name", "why", "applicant", "events"} <= set(case)
    applicant = case["applicant"]
    assert set(applicant) <= APPLICANT_KEYS, f"unknown keys {set(applicant) - APPLICANT_KEYS}"
    assert {"kind", "id", "region"} <= set(applicant)
    try:
        if applicant["kind"] == "individual":
            validate_ric(str(applicant["id"]), today=dt.date.today())
        else:
            validate_uscc(str(applicant["id"]))
    except IdentifierInvalid as exc:
        pytest.fail(f"applicant id {applicant['id']}: {exc}")
    assert applicant["region"] in registry().rules.ancestors, "region not in regions.yaml"
    for entry in case.get("ledger") or ():
        assert set(entry) <= LEDGER_KEYS, f"unknown keys {set(entry) - LEDGER_KEYS}"
        assert {"matter", "subject", "amount"} <= set(entry)
        if "clause" in entry:
            assert clause_by_id(entry["clause"]).matter == entry["matter"]
    assert case["events"], "a case has at least one event"
    for event in case["events"]:
        assert set(event) <= EVENT_KEYS, f"unknown keys {set(event) - EVENT_KEYS}"
        assert {"matter", "date", "subject", "expect"} <= set(event)
        assert event["matter"] in registry().rules.matters, f"no matter {event['matter']}"
        expect = event["expect"]
        assert set(expect) <= EXPECT_KEYS, f"unknown expectations {set(expect) - EXPECT_KEYS}"
        assert expect["status"] in STATUSES
        if expect["status"] == "eligible":
            assert "amount" in expect, "an eligible event states its amount"
            assert "granted" in expect, "an eligible event names the clause that pays"
        else:
            assert "granted" not in expect, "only an eligible event has a paying clause"
        if expect["status"] == "needs_assessment":
            assert "range" in expect
        if expect["status"] == "unknown":
            assert "missing" in expect
        for clause_id, outcome in (expect.get("outcomes") or {}).items():
            assert outcome in OUTCOMES - {"granted"}, f"{clause_id}: outcome {outcome}"
            assert clause_by_id(clause_id).matter == event["matter"]
        if "granted" in expect:
            assert clause_by_id(expect["granted"]).matter == event["matter"]
    passages = list(cited_passages(case["why"]))
    assert passages, "the why paragraph quotes at least one passage in 「」"
    for passage, document_id in passages:
        assert document_id is not None, f"「{passage}」 follows no document's 文号, id or title"
        quotes = registry().documents[document_id].quotes
        parts = [_flat(p) for p in passage.replace("……", "…").split("…") if p.strip()]
        assert any(all(part in quote for part in parts) for quote in quotes), (
            f"「{passage}」 is not in any clause or exclusion quote of {document_id}"
        )


# -- the decision ------------------------------------------------------------------------------


def build_ledger(entries: list[dict[str, Any]]) -> Ledger:
    """The ledger as the claims service keeps it: by subject, and by cap for capped clauses."""
    by_subject: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    by_cap: defaultdict[str, Decimal] = defaultdict(Decimal)
    by_cap_year: defaultdict[tuple[str, int], Decimal] = defaultdict(Decimal)
    by_subject_cap: defaultdict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        amount = money(entry["amount"])
        by_subject[(entry["matter"], str(entry["subject"]))] += amount
        if "clause" not in entry:
            continue
        clause = clause_by_id(entry["clause"])
        granted_for = Event(
            matter=entry["matter"],
            date=day(entry.get("date", "2000-01-01")),
            subject=str(entry["subject"]),
            attributes=entry.get("attributes") or {},
        )
        key = clause.cap_key_for(granted_for)  # a per-project cap counts under its project
        if clause.caps.running:
            by_subject_cap[(entry["matter"], str(entry["subject"]), key)] += amount
        if clause.caps.cumulative is not None:
            by_cap[key] += amount
        if clause.caps.per_applicant_year is not None:
            assert "date" in entry, f"{clause.id} has a yearly cap: the ledger entry needs a date"
            by_cap_year[(key, day(entry["date"]).year)] += amount
    return Ledger(
        by_subject=dict(by_subject),
        by_cap=dict(by_cap),
        by_cap_year=dict(by_cap_year),
        by_subject_cap=dict(by_subject_cap),
    )


def check(result: Result, expect: Mapping[str, Any]) -> None:
    considered = [(c.clause.id, c.outcome) for c in result.considered]
    shown = "\n".join(f"  {cid}: {outcome}" for cid, outcome in considered)
    where = f"{result.event.matter} {result.event.date} → {result.status} {result.amount}\n{shown}"
    counted = Counter(cid for cid, _ in considered)
    assert all(n == 1 for n in counted.values()), f"a clause is reported twice\n{where}"
    every = {c.id for c in registry().rules.candidates_for(result.event.matter)}
    assert set(counted) == every, f"not every clause of the matter is reported\n{where}"
    assert result.status == expect["status"], where
    if "amount" in expect:
        assert result.amount == money(expect["amount"]), where
    if "granted" in expect:
        assert result.granted is not None, where
        assert result.granted.clause.id == expect["granted"], where
        assert dict(considered)[expect["granted"]] == "granted", where
    else:
        assert "granted" not in dict(considered).values(), where
    for clause_id, outcome in (expect.get("outcomes") or {}).items():
        assert dict(considered).get(clause_id) == outcome, f"{clause_id} ≠ {outcome}\n{where}"
    if "range" in expect:
        low, high = expect["range"]
        assert result.range == (money(low), money(high)), f"range {result.range}\n{where}"
    if "missing" in expect:
        assert sorted(result.missing) == sorted(expect["missing"]), f"{result.missing}\n{where}"
    if "entitlement" in expect:
        assert result.entitlement == money(expect["entitlement"]), where
    if "previously_granted" in expect:
        assert result.previously_granted == money(expect["previously_granted"]), where


@pytest.mark.parametrize("case", case_params(with_defects=True))
def test_decision(case: dict[str, Any]) -> None:
    a = case["applicant"]
    applicant = Applicant(
        id=str(a["id"]),
        kind=a["kind"],
        region=str(a["region"]),
        name=a.get("name", ""),
        attributes=a.get("attributes") or {},
    )
    events = [
        Event(
            matter=e["matter"],
            date=day(e["date"]),
            subject=str(e["subject"]),
            quantity=int(e.get("quantity", 1)),
            attributes=e.get("attributes") or {},
        )
        for e in case["events"]
    ]
    ledger = build_ledger(case.get("ledger") or [])
    decision = decide(applicant, events, registry().rules, ledger)
    assert len(decision.results) == len(events)
    for result, event in zip(decision.results, case["events"], strict=True):
        check(result, event["expect"])
    assert decision.total == sum((r.amount for r in decision.results), Decimal("0.00"))


def test_case_names_are_unique() -> None:
    """A case is found by its file and name."""
    named = Counter(f"{stem}:{case['name']}" for stem, case in load_cases())
    assert [name for name, n in named.items() if n > 1] == []


def test_every_outcome_and_status_is_exercised() -> None:
    """The passing cases between them show every outcome and every status at least once."""
    statuses: set[str] = set()
    outcomes: set[str] = set()
    for _, case in load_cases():
        if case.get("known_defect"):
            continue
        for event in case["events"]:
            expect = event["expect"]
            statuses.add(expect["status"])
            outcomes.update((expect.get("outcomes") or {}).values())
            if "granted" in expect:
                outcomes.add("granted")
    assert sorted(STATUSES - statuses) == []
    assert sorted(OUTCOMES - outcomes) == []
