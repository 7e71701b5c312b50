"""A capped clause's worth for a subject is its cap's balance plus what that subject was paid
under the cap, never plus what it was paid under other clauses: claims on PostgreSQL and on
SQLite, and the calculation's ledger read, agree.

Two documents reward one matter: an older one a fixed 250 yuan, a newer one 100 % of `value`
with a yearly cap of 1,000 per applicant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from calculator.calculations.endpoints import check_scope
from calculator.claims import service
from calculator.claims.ledger import Claims
from calculator.claims.locks import Locks
from calculator.claims.reads import LedgerReads
from calculator.claims.schemas import ClaimIn
from calculator.config import Settings
from calculator.engine.rules import RuleSet, compile_snapshot
from calculator.main import SERVICE, open_claims
from sqlalchemy.ext.asyncio import async_sessionmaker
from subsidy_common.database import create_engine, migrate

APPLICANT = "91510500MA62B8XY4F"
MATTER = "tech_transfer.service"


def rules() -> RuleSet:
    def document(doc_id: str, start: str, clause: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": doc_id, "doc_no": doc_id, "jurisdiction": ["510500"], "effective_from": start,
            "effective_to": None, "repealed_date": None,
            "clauses": [{"ref": "一", "beneficiaries": ["enterprise"], "quote": "q",
                         "matter": MATTER, **clause}],
        }  # fmt: skip

    regions = [
        {"code": "510000", "name": "四川省", "parent": None, "level": "province"},
        {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
    ]
    matter = {"key": MATTER, "name": MATTER, "beneficiaries": ["enterprise"],
              "attributes": {"value": {"type": "money"}}}  # fmt: skip
    older = {"id": "a", "amount": {"kind": "fixed", "value": "250"}}
    newer = {"id": "b", "amount": {"kind": "percentage", "rate": "1", "base": "value"},
             "caps": {"per_applicant_year": "1000"}}  # fmt: skip
    documents = [document("older", "2015-01-01", older), document("newer", "2023-01-01", newer)]
    return compile_snapshot(
        {"version": "caps", "regions": regions, "matters": [matter], "documents": documents}
    )


RULES = rules()


def claim(subject: str, value: int) -> ClaimIn:
    return ClaimIn.model_validate(
        {
            "applicant": {"id": APPLICANT, "kind": "enterprise", "name": "甲公司", "region": "510500"},
            "event": {"matter": MATTER, "date": "2024-06-01", "subject": subject,
                      "attributes": {"value": value}},
        }
    )  # fmt: skip


@pytest.fixture
async def database(empty_database: str) -> str:
    await migrate(Settings().migrations_dir(SERVICE), empty_database)
    return empty_database


@pytest.fixture
async def claims_and_reads(database: str) -> AsyncIterator[tuple[Claims, LedgerReads]]:
    engine = create_engine(database)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    claims = await open_claims(database, sessions, Locks())
    reads = await LedgerReads.open(sessions, database)
    yield claims, reads
    await reads.close()
    await claims.close()
    await engine.dispose()


async def test_a_capped_clause_is_widened_only_by_what_was_paid_under_it(
    claims_and_reads: tuple[Claims, LedgerReads],
) -> None:
    claims, reads = claims_and_reads
    count = iter(range(100))

    async def submit(subject: str, value: int) -> dict[str, Any]:
        status, body = await service.submit(
            claims, caller=service.Caller(tenant_id="t"), key=f"k{next(count)}",
            claim=claim(subject, value), rules=RULES, today=dt.date(2026, 1, 1),
            now=lambda: dt.datetime.now(dt.UTC), check_scope=check_scope,
        )  # fmt: skip
        assert status == 201
        answer: dict[str, Any] = orjson.loads(body)
        return answer

    # X takes 500 of the year's 1,000 under the newer clause.
    assert (await submit("X", 500))["amount"] == "500.00"
    # D is worth 300 under it, more than the older 250: 300 under the cap, 200 left.
    d = await submit("D", 300)
    assert (d["status"], d["amount"], d["decision"]["granted"]["policy_id"]) == (
        "granted", "300.00", "newer",
    )  # fmt: skip
    # C would be worth 600, but the cap leaves 200: the older clause's 250 is the better.
    c = await submit("C", 600)
    assert (c["amount"], c["decision"]["granted"]["policy_id"]) == ("250.00", "older")
    # C again: the newer clause is still worth only 200 to it, since its 250 came from the
    # older clause, outside the cap; nothing more is due.
    again = await submit("C", 600)
    assert (again["status"], again["amount"]) == ("duplicate", "0.00")
    # D's value grows to 600: its 300 under the cap and the 200 left make it worth 500 now,
    # and the top-up is the 200.
    more = await submit("D", 600)
    assert (more["status"], more["amount"], more["entitlement"]) == (
        "topped_up", "200.00", "500.00",
    )  # fmt: skip

    ledger = (await reads.many([(APPLICANT, MATTER, "C"), (APPLICANT, MATTER, "D")]))[APPLICANT]
    assert dict(ledger.by_subject) == {(MATTER, "C"): Decimal(250), (MATTER, "D"): Decimal(500)}
    assert dict(ledger.by_subject_cap) == {(MATTER, "D", "newer.b"): Decimal(500)}
    assert dict(ledger.by_cap_year) == {("newer.b", 2024): Decimal(1000)}
