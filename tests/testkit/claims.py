"""Claims on a calculator database, submitted and revoked as the calculator's endpoints do."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import orjson
from calculator.calculations.endpoints import check_scope
from calculator.claims import repository, service
from calculator.claims.ledger import Claims
from calculator.claims.locks import Locks
from calculator.claims.schemas import ClaimIn
from calculator.engine.model import Ledger
from calculator.engine.rules import RuleSet, compile_snapshot
from calculator.main import open_claims
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from subsidy_common.database import create_engine

CITY = [
    {"code": "510000", "name": "四川省", "parent": None, "level": "province"},
    {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
]


def one_document(
    version: str, matters: list[dict[str, Any]], clauses: list[dict[str, Any]]
) -> RuleSet:
    """A rule set of one open-ended city document from 2015 with these clauses."""
    document = {"id": "doc", "doc_no": "doc", "jurisdiction": ["510500"],
                "effective_from": "2015-01-01", "effective_to": None, "repealed_date": None,
                "clauses": clauses}  # fmt: skip
    return compile_snapshot(
        {"version": version, "regions": CITY, "matters": matters, "documents": [document]}
    )


class Desk:
    """One database's claims, each submitted with a fresh Idempotency-Key."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], claims: Claims) -> None:
        self.sessions = sessions
        self.claims = claims
        self.locks = Locks()
        self._keys = itertools.count()

    async def submit(
        self, rules: RuleSet, applicant: dict[str, Any], event: dict[str, Any]
    ) -> dict[str, Any]:
        """A claim for one event; the claim as answered."""
        status, body = await service.submit(
            self.claims, caller=service.Caller(tenant_id="t"), key=f"k{next(self._keys)}",
            claim=ClaimIn.model_validate({"applicant": applicant, "event": event}),
            rules=rules, today=dt.date(2026, 1, 1), now=lambda: dt.datetime.now(dt.UTC),
            check_scope=check_scope,
        )  # fmt: skip
        assert status == 201
        answer: dict[str, Any] = orjson.loads(body)
        return answer

    async def revoke(self, claim_id: str) -> dict[str, Any]:
        """Take a claim's grant back; the claim as answered."""
        body = await service.revoke(
            self.sessions, self.locks, claim_id=claim_id,
            caller=service.Caller(tenant_id="t", visibility="all", actor="admin"),
            reason="追回测试", now=lambda: dt.datetime.now(dt.UTC),
        )  # fmt: skip
        answer: dict[str, Any] = orjson.loads(body)
        return answer

    async def review(self, claim_id: str, *, approve: bool) -> dict[str, Any]:
        """Approve or reject a claim held for review; the claim as answered."""
        body = await service.review(
            self.sessions, self.locks, claim_id=claim_id,
            caller=service.Caller(tenant_id="t", visibility="all", actor="admin"),
            approve=approve, reason="复核测试", now=lambda: dt.datetime.now(dt.UTC),
        )  # fmt: skip
        answer: dict[str, Any] = orjson.loads(body)
        return answer

    async def set_budget(self, fund: str, budget: Decimal) -> None:
        """Give a fund a budget."""
        async with self.sessions() as session:
            await repository.set_budget(
                session, fund, budget=budget, by="admin", reason="预算", at=dt.datetime.now(dt.UTC)
            )
            await session.commit()

    async def ledger(self, applicant_id: str, subjects: list[tuple[str, str]]) -> Ledger:
        """The applicant's ledger as a calculation reads it."""
        async with self.sessions() as session:
            return await repository.ledger_for(session, applicant_id, subjects)


@asynccontextmanager
async def open_desk(url: str) -> AsyncIterator[Desk]:
    """A Desk on a migrated database."""
    engine = create_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    claims = await open_claims(url, sessions, Locks())
    try:
        yield Desk(sessions, claims)
    finally:
        await claims.close()
        await engine.dispose()
