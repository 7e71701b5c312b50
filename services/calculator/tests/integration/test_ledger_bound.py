"""A claim worth more than the ledger's columns hold is refused, not a database error."""

from __future__ import annotations

import pytest
from calculator.claims.service import AmountBeyondLedger
from calculator.engine.rules import RuleSet
from testkit.claims import Desk, one_document

MATTER = "award.unit"


def rules() -> RuleSet:
    matters = [{"key": MATTER, "name": MATTER, "beneficiaries": ["enterprise"], "attributes": {}}]
    clause = {"id": "u", "ref": "一", "matter": MATTER, "beneficiaries": ["enterprise"],
              "quote": "q", "amount": {"kind": "per_unit", "rate": "999999999999.99", "unit": "件"}}  # fmt: skip
    return one_document("bound", matters, [clause])


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
