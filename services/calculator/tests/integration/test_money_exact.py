"""Money in the ledger is exact on SQLite as on PostgreSQL: balances moved by amounts in fen
still hold what was read, so the next claim's compare-and-set finds them; caps and fund budgets
add up to the fen; and a SQLite ledger written before holds its amounts to the fen once migrated.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from calculator.claims import repository
from calculator.config import Settings
from calculator.engine.rules import RuleSet
from calculator.main import SERVICE
from sqlalchemy import select, text
from subsidy_common.database import alembic_config, create_engine, upgrade_head
from testkit.claims import Desk, one_document, open_desk

APPLICANT = "91510500MA62B8XY4F"
LISTING = "listing.completed"
CONTRACT = "tech_contract.registered"
FEE = "testing.fee_paid"
FUND = "测试资金"


def rules() -> RuleSet:
    matters = [
        {"key": LISTING, "name": LISTING, "beneficiaries": ["enterprise"], "attributes": {}},
        *({"key": key, "name": key, "beneficiaries": ["enterprise"],
           "attributes": {"value": {"type": "money"}}} for key in (CONTRACT, FEE)),
    ]  # fmt: skip
    clauses = [
        {"id": "listing", "ref": "一", "matter": LISTING, "beneficiaries": ["enterprise"],
         "amount": {"kind": "range", "min": "250000", "max": "2500000"}, "quote": "q"},
        {"id": "contract", "ref": "二", "matter": CONTRACT, "beneficiaries": ["enterprise"],
         "amount": {"kind": "percentage", "rate": "1", "base": "value"},
         "caps": {"cumulative": "1000000", "cumulative_key": "contract"}, "quote": "q"},
        {"id": "fee", "ref": "三", "matter": FEE, "beneficiaries": ["enterprise"],
         "amount": {"kind": "percentage", "rate": "1", "base": "value"},
         "funding_source": FUND, "quote": "q"},
    ]  # fmt: skip
    return one_document("money", matters, clauses)


RULES = rules()
COMPANY = {"id": APPLICANT, "kind": "enterprise", "name": "甲公司", "region": "510500"}


async def listing(desk: Desk, assessed: str) -> dict[str, Any]:
    event = {"matter": LISTING, "date": "2024-06-01", "subject": "NEEQ-1",
             "attributes": {"assessed_amount": assessed}}  # fmt: skip
    return await desk.submit(RULES, COMPANY, event)


async def contract(desk: Desk, subject: str, value: str, matter: str = CONTRACT) -> dict[str, Any]:
    event = {"matter": matter, "date": "2024-06-01", "subject": subject,
             "attributes": {"value": value}}  # fmt: skip
    return await desk.submit(RULES, COMPANY, event)


def answered(claim: dict[str, Any]) -> tuple[str, str]:
    return claim["status"], claim["amount"]


async def test_top_ups_in_fen_leave_the_subject_claimable(desk: Desk) -> None:
    assert answered(await listing(desk, "250000.10")) == ("granted", "250000.10")
    for assessed in ("250000.30", "250000.50", "250000.70"):
        assert answered(await listing(desk, assessed)) == ("topped_up", "0.20")
    assert answered(await listing(desk, "250000.70")) == ("duplicate", "0.00")
    ledger = await desk.ledger(APPLICANT, [(LISTING, "NEEQ1")])
    assert ledger.granted(LISTING, "NEEQ1") == Decimal("250000.70")


async def test_a_cap_balance_in_fen_stays_claimable(desk: Desk) -> None:
    assert answered(await contract(desk, "C1", "10000.01")) == ("granted", "10000.01")
    assert answered(await contract(desk, "C2", "50000.01")) == ("granted", "50000.01")
    assert answered(await contract(desk, "C3", "0.03")) == ("granted", "0.03")
    ledger = await desk.ledger(APPLICANT, [(CONTRACT, "C2")])
    assert ledger.by_cap == {"contract": Decimal("60000.05")}
    assert ledger.by_subject_cap == {(CONTRACT, "C2", "contract"): Decimal("50000.01")}


async def test_a_budget_is_spent_to_the_fen(desk: Desk) -> None:
    await desk.set_budget(FUND, Decimal("0.30"))
    assert answered(await contract(desk, "F1", "0.10", FEE)) == ("granted", "0.10")
    # 0.20 left of the budget, as 0.10 + 0.20 <= 0.30 holds in fen and not in binary floats.
    assert answered(await contract(desk, "F2", "0.20", FEE)) == ("granted", "0.20")
    assert answered(await contract(desk, "F3", "0.01", FEE))[0] == "budget_exhausted"
    async with desk.sessions() as session:
        fund = (await session.execute(select(repository.fund_budget.c.granted))).scalar_one()
    assert fund == Decimal("0.30")


async def test_a_sqlite_ledger_kept_in_binary_floats_is_migrated_to_the_fen(
    empty_database: str,
) -> None:
    scripts = Settings().migrations_dir(SERVICE)
    await asyncio.to_thread(command.upgrade, alembic_config(scripts, empty_database), "c0006")
    engine = create_engine(empty_database)
    try:
        # What the binary floats of SQLite made of 250000.10 + 0.20, and 10000.01 + 50000.01.
        async with engine.begin() as connection:
            for statement, granted in (
                ("INSERT INTO ledger_balance VALUES (:a, :m, 'NEEQ1', :g)", 250000.30000000002),
                ("INSERT INTO cap_balance VALUES (:a, 'contract', 0, :g)", 60000.020000000004),
            ):
                await connection.execute(
                    text(statement), {"a": APPLICANT, "m": LISTING, "g": granted}
                )
    finally:
        await engine.dispose()
    await asyncio.to_thread(upgrade_head, scripts, empty_database)
    async with open_desk(empty_database) as desk:
        async with desk.sessions() as session:
            subject = (await session.execute(select(repository.balance.c.granted))).scalar_one()
            cap = (await session.execute(select(repository.cap.c.granted))).scalar_one()
        assert (subject, cap) == (Decimal("250000.30"), Decimal("60000.02"))
        assert answered(await listing(desk, "250000.50")) == ("topped_up", "0.20")
        assert answered(await contract(desk, "C3", "0.98")) == ("granted", "0.98")
        ledger = await desk.ledger(APPLICANT, [(CONTRACT, "C3")])
        assert ledger.by_cap == {"contract": Decimal("60001.00")}


@pytest.mark.parametrize("value", ["0.01", "999999.99"])
async def test_an_amount_reads_back_as_written(desk: Desk, value: str) -> None:
    assert answered(await contract(desk, "C1", value))[1] == value
    ledger = await desk.ledger(APPLICANT, [(CONTRACT, "C1")])
    assert ledger.granted(CONTRACT, "C1") == Decimal(value)
