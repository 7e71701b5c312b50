"""A model of the ledger, checked against the real one step by step (Hypothesis state machine).

Steps: submit a claim (new key), retry a key with its body, submit again for a subject already
paid, revoke a paid claim. Invariants after every step: the ledger's balance for each subject
equals the sum of its unrevoked grants, and never exceeds the best entitlement claimed for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import orjson
from calculator.calculations.endpoints import check_scope
from calculator.claims import service
from calculator.claims.locks import Locks
from calculator.claims.schemas import ClaimIn
from calculator.config import Settings
from calculator.engine.rules import compile_snapshot
from calculator.main import SERVICE, open_claims
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from subsidy_common.database import create_engine, migrate
from testkit import create_database, drop_database

TIERS = [(0, Decimal("0")), (20_000_000, Decimal("100000")), (50_000_000, Decimal("200000"))]
RULES = compile_snapshot(
    {
        "version": "model",
        "regions": [
            {"code": "510500", "name": "泸州市", "parent": None, "level": "city"},
            {"code": "510502", "name": "江阳区", "parent": "510500", "level": "county"},
        ],
        "matters": [
            {"key": "patent.industrialized", "name": "x", "beneficiaries": ["enterprise"],
             "attributes": {"sales_yuan": {"type": "money", "description": "销售收入"}}},
        ],
        "documents": [
            {"id": "doc", "doc_no": "测试", "jurisdiction": ["510500"], "effective_from": "2015-01-01",
             "effective_to": None, "repealed_date": None, "clauses": [
                {"id": "sales", "ref": "（二十）", "matter": "patent.industrialized",
                 "beneficiaries": ["enterprise"], "quote": "q",
                 "amount": {"kind": "tiered", "attribute": "sales_yuan", "tiers": [
                     {"at_least": 20000000, "amount": {"kind": "fixed", "value": "100000"}},
                     {"at_least": 50000000, "amount": {"kind": "fixed", "value": "200000"}}]}}]},
        ],
    }
)  # fmt: skip


def entitlement(sales: int) -> Decimal:
    return max(amount for threshold, amount in TIERS if sales >= threshold)


def claim(subject: str, sales: int) -> ClaimIn:
    return ClaimIn.model_validate(
        {
            "applicant": {"id": "91510500MA62B8XY4F", "kind": "enterprise", "name": "甲", "region": "510502"},
            "event": {"matter": "patent.industrialized", "date": "2020-01-01", "subject": subject,
                      "attributes": {"sales_yuan": sales}},
        }
    )  # fmt: skip


class LedgerMachine(RuleBasedStateMachine):
    """The real ledger beside a dictionary that says what it must hold."""

    keys = Bundle("keys")
    paid = Bundle("paid")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.url = self.loop.run_until_complete(create_database("model"))
        self.loop.run_until_complete(migrate(Settings().migrations_dir(SERVICE), self.url))
        self.engine: AsyncEngine = create_engine(self.url, pool_size=2)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.locks = Locks()
        self.claims = self.loop.run_until_complete(open_claims(self.url, self.sessions, self.locks))
        self.grants: dict[str, Decimal] = {}  # claim id → amount still counting
        self.subject_of: dict[str, str] = {}
        self.best: dict[str, Decimal] = {}

    def teardown(self) -> None:
        self.loop.run_until_complete(self.claims.close())
        self.loop.run_until_complete(self.engine.dispose())
        self.loop.run_until_complete(drop_database(self.url))
        self.loop.close()

    def submit(self, key: str, subject: str, sales: int) -> dict[str, Any]:
        status, body = self.loop.run_until_complete(
            service.submit(
                self.claims, caller=service.Caller(tenant_id="t"), key=key,
                claim=claim(subject, sales), rules=RULES, today=dt.date(2026, 1, 1),
                now=lambda: dt.datetime.now(dt.UTC), check_scope=check_scope,
            )
        )  # fmt: skip
        assert status == 201
        result: dict[str, Any] = orjson.loads(body)
        return result

    @initialize()
    def start(self) -> None:
        pass

    @rule(
        target=keys,
        subject=st.sampled_from(["A", "B"]),
        sales=st.sampled_from([10**6, 3 * 10**7, 6 * 10**7]),
    )
    def submit_new(self, subject: str, sales: int) -> tuple[str, str, int]:
        key = uuid.uuid4().hex
        before = sum(a for c, a in self.grants.items() if self.subject_of[c] == subject)
        result = self.submit(key, subject, sales)
        due = max(Decimal(0), entitlement(sales) - before)
        assert Decimal(result["amount"]) == due
        self.best[subject] = max(self.best.get(subject, Decimal(0)), entitlement(sales))
        if due > 0:
            self.grants[result["id"]] = due
            self.subject_of[result["id"]] = subject
        return key, subject, sales

    @rule(entry=keys)
    def retry(self, entry: tuple[str, str, int]) -> None:
        key, subject, sales = entry
        before = dict(self.grants)
        first = self.submit(key, subject, sales)
        assert self.submit(key, subject, sales) == first
        assert self.grants == before

    @rule()
    def revoke_one(self) -> None:
        if not self.grants:
            return
        claim_id = sorted(self.grants)[0]
        body = self.loop.run_until_complete(
            service.revoke(self.sessions, self.locks, claim_id=claim_id,
                           caller=service.Caller(tenant_id="t", visibility="all", actor="model"),
                           reason="追回", now=lambda: dt.datetime.now(dt.UTC))
        )  # fmt: skip
        assert orjson.loads(body)["status"] == "revoked"
        del self.grants[claim_id]

    @invariant()
    def ledger_equals_grants_and_never_exceeds_entitlement(self) -> None:
        async def balances() -> dict[str, Decimal]:
            async with self.engine.connect() as connection:
                rows = await connection.execute(text("SELECT subject, granted FROM ledger_balance"))
                return {row.subject: Decimal(row.granted) for row in rows}

        held = self.loop.run_until_complete(balances())
        for subject in ("A", "B"):
            expected = sum(
                (a for c, a in self.grants.items() if self.subject_of[c] == subject), Decimal(0)
            )
            assert held.get(subject, Decimal(0)) == expected
            assert expected <= self.best.get(subject, Decimal(0))


LedgerMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=12, deadline=None)
test_ledger_model = LedgerMachine.TestCase
