"""A claim worth more than the ledger's columns hold is refused, not a database error."""

from __future__ import annotations

import pytest
from calculator.claims.service import AmountBeyondLedger
from calculator.engine.rules import RuleSet, compile_snapshot
from testkit.claims import Desk

MATTER = "award.unit"


def rules() -> RuleSet:
    regions = [
        {"code": "510000", "name": "四川省", "parent": None, "level": "province"},
        {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
    ]
    matters = [{"key": MATTER, "name": MATTER, "beneficiaries": ["enterprise"], "attributes": {}}]
    clause = {"id": "u", "ref": "一", "matter": MATTER, "beneficiaries": ["enterprise"],
              "quote": "q", "amount": {"kind": "per_unit", "rate": "999999999999.99", "unit": "件"}}  # fmt: skip
    document = {"id": "doc", "doc_no": "doc", "jurisdiction": ["510500"],
                "effective_from": "2015-01-01", "effective_to": None, "repealed_date": None,
                "clauses": [clause]}  # fmt: skip
    return compile_snapshot(
        {"version": "bound", "regions": regions, "matters": matters, "documents": [document]}
    )


async def test_an_entitlement_of_a_trillion_yuan_is_refused(desk: Desk) -> None:
    company = {
        "id": "91510500MA62B8XY4F",
        "kind": "enterprise",
        "name": "甲公司",
        "region": "510500",
    }
    most = await desk.submit(rules(), company, {"matter": MATTER, "date": "2024-06-01",
                                                "subject": "one"})  # fmt: skip
    assert (most["status"], most["amount"]) == ("granted", "999999999999.99")
    with pytest.raises(AmountBeyondLedger):
        await desk.submit(rules(), company, {"matter": MATTER, "date": "2024-06-01",
                                             "subject": "two", "quantity": 2})  # fmt: skip
