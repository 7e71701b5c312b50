"""A revocation takes a grant back from the cap balances the grant moved, and from no other.

Two clauses share the cap key K: X pays 30,000 under a cumulative cap, Y 10,000 under a yearly
one. A grant of X moves K's cumulative balance only, one of Y K's yearly balance only; taking X
back must leave Y's yearly balance as it is. Claims recorded before the moves were kept are
read off the ledger where it proves them, and otherwise leave the cap balances as they are.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from calculator.claims import repository
from calculator.config import Settings
from calculator.engine.rules import RuleSet
from calculator.main import SERVICE
from sqlalchemy import select
from subsidy_common.database import alembic_config, create_engine, upgrade_head
from testkit.claims import Desk, one_document, open_desk

APPLICANT = "91510500MA62B8XY4F"
X, Y = "award.x", "award.y"
K = "shared"


def rules(yearly: int) -> RuleSet:
    matters = [
        {"key": key, "name": key, "beneficiaries": ["enterprise"], "attributes": {}}
        for key in (X, Y)
    ]
    clauses = [
        {"id": "x", "ref": "一", "matter": X, "beneficiaries": ["enterprise"], "quote": "q",
         "amount": {"kind": "fixed", "value": "30000"},
         "caps": {"cumulative": "1000000", "cumulative_key": K}},
        {"id": "y", "ref": "二", "matter": Y, "beneficiaries": ["enterprise"], "quote": "q",
         "amount": {"kind": "fixed", "value": "10000"},
         "caps": {"per_applicant_year": str(yearly), "cumulative_key": K}},
    ]  # fmt: skip
    return one_document("caps", matters, clauses)


async def claim(desk: Desk, rules: RuleSet, matter: str, subject: str) -> dict[str, Any]:
    company = {"id": APPLICANT, "kind": "enterprise", "name": "甲公司", "region": "510500"}
    event = {"matter": matter, "date": "2024-06-01", "subject": subject}
    return await desk.submit(rules, company, event)


async def caps(desk: Desk, applicant_id: str = APPLICANT) -> tuple[Any, Any]:
    ledger = await desk.ledger(applicant_id, [(X, "none")])
    return dict(ledger.by_cap), dict(ledger.by_cap_year)


@pytest.mark.parametrize("yearly", [40000, 20000])
async def test_taking_back_a_cumulative_grant_leaves_the_yearly_balance(
    desk: Desk, yearly: int
) -> None:
    capped = rules(yearly)
    for i in range(yearly // 10000):
        assert (await claim(desk, capped, Y, f"Y{i}"))["status"] == "granted"
    x = await claim(desk, capped, X, "X1")
    assert (x["status"], x["amount"]) == ("granted", "30000.00")
    assert (await desk.revoke(x["id"]))["status"] == "revoked"
    assert await caps(desk) == ({K: Decimal(0)}, {(K, 2024): Decimal(yearly)})
    more = await claim(desk, capped, Y, "Y-more")
    assert (more["status"], more["amount"]) == ("cap_exhausted", "0.00")


async def test_taking_back_a_yearly_grant_leaves_the_cumulative_balance(desk: Desk) -> None:
    capped = rules(40000)
    y = await claim(desk, capped, Y, "Y1")
    await claim(desk, capped, Y, "Y2")
    await claim(desk, capped, X, "X1")
    await desk.revoke(y["id"])
    assert await caps(desk) == ({K: Decimal(30000)}, {(K, 2024): Decimal(10000)})


LEGACY = [
    # applicant, claim, clause, amount, revoked: one clause per cap, each balance proves which.
    ("A", "a-y1", "doc.y", 10000, False),
    ("A", "a-y2", "doc.y", 10000, False),
    ("A", "a-x1", "doc.x", 30000, False),
    # 3 x 10,000 and 30,000: either clause could have made either balance.
    ("B", "b-y1", "doc.y", 10000, False),
    ("B", "b-y2", "doc.y", 10000, False),
    ("B", "b-y3", "doc.y", 10000, False),
    ("B", "b-x1", "doc.x", 30000, False),
    # X2 taken back, mistakenly from the yearly balance too: 30,000 - 20,000 is left of it.
    ("C", "c-y1", "doc.y", 10000, False),
    ("C", "c-y2", "doc.y", 10000, False),
    ("C", "c-y3", "doc.y", 10000, False),
    ("C", "c-x1", "doc.x", 30000, False),
    ("C", "c-x2", "doc.x", 20000, True),
]
LEGACY_CAPS = {"A": (30000, 20000), "B": (30000, 30000), "C": (30000, 10000)}


async def test_claims_recorded_before_give_back_what_the_ledger_proves_they_moved(
    empty_database: str,
) -> None:
    scripts = Settings().migrations_dir(SERVICE)
    await asyncio.to_thread(command.upgrade, alembic_config(scripts, empty_database), "c0007")
    engine = create_engine(empty_database)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    try:
        async with engine.begin() as connection:
            for i, (applicant, claim_id, clause, amount, revoked) in enumerate(LEGACY):
                await connection.execute(
                    repository.claim.insert().values(
                        id=claim_id, tenant_id="t", applicant_id=applicant,
                        applicant_kind="enterprise", applicant_name="", name_key="",
                        region="510500", matter=X if clause == "doc.x" else Y, subject=claim_id,
                        event_date=dt.date(2024, 6, 1), status="revoked" if revoked else "granted",
                        initial_status="granted", amount=Decimal(amount),
                        entitlement=Decimal(amount), previously_granted=Decimal(0), cap_key=K,
                        duplicate_of=[], decision={"granted": {"clause_id": clause}},
                        registry_version="v1", created_at=start + dt.timedelta(days=i),
                        revoked_at=start + dt.timedelta(days=100) if revoked else None,
                    )
                )  # fmt: skip
                await connection.execute(
                    repository.balance.insert().values(
                        applicant_id=applicant, matter=X if clause == "doc.x" else Y,
                        subject=claim_id, granted=Decimal(0 if revoked else amount),
                    )
                )  # fmt: skip
            for applicant, (cumulative, yearly) in LEGACY_CAPS.items():
                for year, granted in ((0, cumulative), (2024, yearly)):
                    await connection.execute(
                        repository.cap.insert().values(
                            applicant_id=applicant, cap_key=K, year=year, granted=Decimal(granted)
                        )
                    )
    finally:
        await engine.dispose()
    await asyncio.to_thread(upgrade_head, scripts, empty_database)

    async with open_desk(empty_database) as desk:
        async with desk.sessions() as session:
            rows = await session.execute(
                select(
                    repository.claim.c.id,
                    repository.claim.c.cumulative_cap_moved,
                    repository.claim.c.yearly_cap_moved,
                ).order_by(repository.claim.c.id)
            )
            moved = {row.id: (row.cumulative_cap_moved, row.yearly_cap_moved) for row in rows}
        assert moved == {
            "a-x1": (True, False), "a-y1": (False, True), "a-y2": (False, True),
            "b-x1": (None, None), "b-y1": (None, None), "b-y2": (None, None),
            "b-y3": (None, None),
            "c-x1": (True, False), "c-x2": (None, None), "c-y1": (False, True),
            "c-y2": (False, True), "c-y3": (False, True),
        }  # fmt: skip

        await desk.revoke("a-x1")
        assert await caps(desk, "A") == ({K: Decimal(0)}, {(K, 2024): Decimal(20000)})
        await desk.revoke("b-x1")  # unknown: both balances left as they are
        assert await caps(desk, "B") == ({K: Decimal(30000)}, {(K, 2024): Decimal(30000)})
        # C's yearly balance lost 20,000 to X2's revocation: no more than what is left of it
        # is given back.
        await desk.revoke("c-y1")
        await desk.revoke("c-y2")
        assert await caps(desk, "C") == ({K: Decimal(30000)}, {(K, 2024): Decimal(0)})
