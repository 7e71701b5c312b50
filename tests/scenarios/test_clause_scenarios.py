"""Each encoded clause against the passage it comes from: the YAML cases under clauses/.

A case names one clause and says what that clause alone is worth for an event; the engine
decides the event with the registry's policy files, restricted to that clause.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from calculator.engine.decide import decide
from calculator.engine.model import Applicant, Event
from calculator.engine.rules import RuleSet, compile_snapshot
from registry.policy_files.loader import read_policy_dir

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted((ROOT / "tests" / "scenarios" / "clauses").glob("*.yaml"))


@cache
def rules() -> RuleSet:
    """The rule set of the repository's policy files, as the registry's snapshot carries it."""
    policy_set = read_policy_dir(ROOT / "policies")
    snapshot = {
        "version": "policy-files",
        "regions": [r.model_dump(mode="json") for r in policy_set.regions.regions],
        "matters": [m.model_dump(mode="json") for m in policy_set.matters.matters],
        "documents": [d.model_dump(mode="json") for _, d in policy_set.documents],
    }
    return compile_snapshot(snapshot)


def load_cases() -> list[Any]:
    params = []
    for path in CASES:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            params.append(
                pytest.param(
                    data["document"], case, id=f"{path.stem}:{case['clause']}:{case['name']}"
                )
            )
    return params


def only(ruleset: RuleSet, clause_id: str) -> RuleSet:
    """The rule set reduced to one clause (and its document's exclusions)."""
    for matter, clauses in ruleset.clauses.items():
        for clause in clauses:
            if clause.id == clause_id:
                return replace(ruleset, clauses={matter: (clause,)}, strategies={})
    raise AssertionError(f"no clause {clause_id} in the policy files")


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@pytest.mark.parametrize(("document", "case"), load_cases())
def test_clause_matches_its_passage(document: str, case: dict[str, Any]) -> None:
    clause_id = f"{document}.{case['clause']}"
    ruleset = only(rules(), clause_id)
    clause = ruleset.clauses[case["event"]["matter"]][0]
    passage = str(case["passage"]).replace("……", "…")
    assert all(part.strip() in clause.quote for part in passage.split("…") if part.strip()), (
        f"the passage is not in the clause's quote: {case['passage']!r}"
    )
    a = case["applicant"]
    applicant = Applicant(
        id=a.get("id", "TEST"),
        kind=a["kind"],
        region=a["region"],
        attributes=a.get("attributes") or {},
    )
    e = case["event"]
    event = Event(
        matter=e["matter"],
        date=dt.date.fromisoformat(str(e["date"])),
        subject=str(e.get("subject", "S-1")),
        quantity=int(e.get("quantity", 1)),
        attributes=e.get("attributes") or {},
    )
    result = decide(applicant, [event], ruleset).results[0]
    expect = case["expect"]
    status = expect["status"]
    outcome = result.considered[-1].outcome if result.considered else None
    if status == "eligible":
        assert result.status == "eligible", result.considered
        assert result.amount == money(expect["amount"])
        if "periods" in expect:
            assert len(result.schedule) == expect["periods"]
    elif status == "needs_assessment":
        assert result.status == "needs_assessment", result.considered
        assert result.range == (money(expect["min"]), money(expect["max"]))
    elif status == "unknown":
        assert result.status == "unknown", result.considered
        assert sorted(result.missing) == sorted(expect["missing"])
    else:
        assert result.status == "ineligible", (result.status, result.considered)
        assert outcome == status, result.considered


def test_every_clause_has_a_case() -> None:
    """No clause is in the registry without a case that checks it against its passage."""
    covered: set[str] = set()
    for path in CASES:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        covered.update(f"{data['document']}.{case['clause']}" for case in data["cases"])
    encoded = {clause.id for clauses in rules().clauses.values() for clause in clauses}
    assert sorted(encoded - covered) == []
