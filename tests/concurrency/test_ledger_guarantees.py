"""Never pay twice, under load and under faults, on a real PostgreSQL that commits.

Each test runs three times: one green run proves nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest
from calculator.calculations.endpoints import check_scope
from calculator.claims import repository, service
from calculator.claims.ledger import Claims
from calculator.claims.locks import Locks, applicant_lock, key_lock
from calculator.claims.postgres import PostgresClaims, PostgresTransaction
from calculator.claims.schemas import ClaimIn
from calculator.config import Settings
from calculator.db import driver_dsn
from calculator.engine.decide import decide
from calculator.engine.rules import RuleSet, compile_snapshot
from calculator.main import SERVICE
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from subsidy_common.database import create_engine, migrate

RUNS = [pytest.param(i, id=f"run{i}") for i in range(3)]
REGIONS = [
    {"code": "510000", "name": "四川省", "parent": None, "level": "province"},
    {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
    {"code": "510502", "name": "江阳区", "parent": "510500", "level": "county"},
]
AMOUNT = Decimal("3000.00")
CAP = Decimal("30000.00")


def rules() -> RuleSet:
    clause = {
        "ref": "（二十）", "beneficiaries": ["enterprise"], "quote": "q",
    }  # fmt: skip
    return compile_snapshot(
        {
            "version": "guarantees",
            "regions": REGIONS,
            "matters": [
                {"key": key, "name": key, "beneficiaries": ["enterprise"], "attributes": {}}
                for key in (
                    "patent.invention.granted",
                    "startup.project_incubated",
                    "patent.utility_model.granted",
                )
            ],
            "documents": [
                {
                    "id": "doc", "doc_no": "测试", "jurisdiction": ["510500"],
                    "effective_from": "2015-01-01", "effective_to": None, "repealed_date": None,
                    "clauses": [
                        {**clause, "id": "invention", "matter": "patent.invention.granted",
                         "amount": {"kind": "fixed", "value": str(AMOUNT)}},
                        {**clause, "id": "funded", "matter": "patent.utility_model.granted",
                         "amount": {"kind": "fixed", "value": "700"},
                         "funding_source": "测试资金"},
                        {**clause, "id": "project", "matter": "startup.project_incubated",
                         "amount": {"kind": "fixed", "value": "100"},
                         "caps": {"cumulative": str(CAP), "cumulative_key": "lead"}},
                    ],
                }
            ],
        }
    )  # fmt: skip


RULES = rules()


def claim(subject: str = "ZL1", matter: str = "patent.invention.granted") -> ClaimIn:
    return ClaimIn.model_validate(
        {
            "applicant": {
                "id": "91510500MA62B8XY4F",
                "kind": "enterprise",
                "name": "甲公司",
                "region": "510502",
            },
            "event": {"matter": matter, "date": "2020-01-01", "subject": subject},
        }
    )


@pytest.fixture
async def database(database_factory: Callable[[str], Awaitable[str]]) -> str:
    url = await database_factory("ledger")
    await migrate(Settings().migrations_dir(SERVICE), url)
    return url


@pytest.fixture
async def ledger(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database, pool_size=15, pool_timeout=120)
    yield engine
    await engine.dispose()


@pytest.fixture
async def claims(database: str) -> AsyncIterator[Claims]:
    # A thousand requests queue for one applicant's lock; they wait for a connection, not fail.
    dsn = driver_dsn(database)
    assert dsn is not None
    opened = await PostgresClaims.open(dsn, max_size=15, acquire_timeout=120)
    yield opened
    await opened.close()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def submit(claims: Claims, tenant: str, key: str, body: ClaimIn) -> tuple[int, bytes]:
    return await service.submit(
        claims, caller=service.Caller(tenant_id=tenant), key=key, claim=body,
        rules=RULES, today=dt.date(2026, 1, 1), now=now, check_scope=check_scope,
    )  # fmt: skip


async def granted_total(engine: AsyncEngine) -> Decimal:
    async with engine.connect() as connection:
        value = await connection.scalar(
            text(
                "SELECT coalesce(sum(amount), 0) FROM claim WHERE status IN ('granted', 'topped_up')"
            )
        )
    return Decimal(value)


async def submit_all(
    calls: list[Awaitable[tuple[int, bytes]]],
) -> list[tuple[int, bytes] | BaseException]:
    return await asyncio.gather(*calls, return_exceptions=True)


@pytest.mark.parametrize("run", RUNS)
async def test_one_event_one_key_a_thousand_times(
    ledger: AsyncEngine, claims: Claims, run: int
) -> None:
    body = claim()
    outcomes = await submit_all([submit(claims, "t1", "same-key", body) for _ in range(1000)])
    answered = [o for o in outcomes if isinstance(o, tuple)]
    in_flight = [o for o in outcomes if isinstance(o, service.IdempotencyKeyInFlight)]
    assert len(answered) + len(in_flight) == 1000, [
        o for o in outcomes if not isinstance(o, tuple | service.IdempotencyKeyInFlight)
    ][:3]
    assert len({payload for _, payload in answered}) == 1, "every answer is the first response"
    assert await granted_total(ledger) == AMOUNT
    # after the storm, the key replays the same bytes
    replay = await submit(claims, "t1", "same-key", body)
    assert replay == answered[0]


@pytest.mark.parametrize("run", RUNS)
async def test_one_event_a_thousand_keys_from_several_tenants(
    ledger: AsyncEngine, claims: Claims, run: int
) -> None:
    body = claim()
    outcomes = await submit_all(
        [submit(claims, f"tenant-{i % 5}", uuid.uuid4().hex, body) for i in range(1000)]
    )
    assert all(isinstance(o, tuple) and o[0] == 201 for o in outcomes), [
        o for o in outcomes if not isinstance(o, tuple)
    ][:3]
    statuses = [orjson.loads(o[1])["status"] for o in outcomes if isinstance(o, tuple)]
    assert statuses.count("granted") == 1
    assert statuses.count("duplicate") == 999
    assert await granted_total(ledger) == AMOUNT


@pytest.mark.parametrize("run", RUNS)
async def test_a_thousand_claims_against_one_cumulative_cap(
    ledger: AsyncEngine, claims: Claims, run: int
) -> None:
    outcomes = await submit_all(
        [
            submit(claims, "t1", uuid.uuid4().hex, claim(f"P{i}", "startup.project_incubated"))
            for i in range(1000)
        ]
    )
    assert all(isinstance(o, tuple) for o in outcomes), {
        repr(o) for o in outcomes if not isinstance(o, tuple)
    }
    assert await granted_total(ledger) == CAP


@pytest.mark.parametrize("held", ["applicant", "key"])
async def test_an_unlocked_write_gives_way_to_a_locked_claim(
    ledger: AsyncEngine, claims: Claims, database: str, held: str
) -> None:
    """A claim's first attempt takes no lock; its write refuses while a locked claim holds the
    applicant or the key, and the retry takes the locks, so it waits for the holder."""
    dsn = driver_dsn(database)
    assert dsn is not None
    holder = await asyncpg.connect(dsn)
    try:
        lock = applicant_lock("91510500MA62B8XY4F") if held == "applicant" else key_lock("t1", "k")
        await holder.execute("BEGIN")
        await holder.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", lock)
        pending = asyncio.create_task(submit(claims, "t1", "k", claim()))
        await asyncio.sleep(0.5)
        if held == "applicant":
            assert not pending.done(), "the retry waits for the applicant's lock"
            assert await granted_total(ledger) == 0, "the unlocked write kept nothing"
            await holder.execute("COMMIT")
            status, _ = await pending
            assert status == 201
        else:
            # A locked claim holding the key is still at work: the retry answers 409 at once.
            with pytest.raises(service.IdempotencyKeyInFlight):
                await pending
            assert await granted_total(ledger) == 0
            await holder.execute("COMMIT")
            status, _ = await submit(claims, "t1", "k", claim())
            assert status == 201
    finally:
        await holder.close()
    assert await granted_total(ledger) == AMOUNT


@pytest.mark.parametrize("step", ["after_locks", "after_reads", "after_writes", "after_commit"])
@pytest.mark.parametrize("run", RUNS)
async def test_a_crash_at_each_step_then_a_retry_grants_once(
    ledger: AsyncEngine, claims: Claims, run: int, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies (an exception no layer catches) between two statements of a claim."""

    class Crash(Exception):
        pass

    def after(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def crashed(*args: Any, **kwargs: Any) -> Any:
            await original(*args, **kwargs)
            raise Crash(step)

        return crashed

    module, name = {
        "after_locks": (PostgresTransaction, "own"),
        "after_reads": (PostgresTransaction, "read"),
        "after_writes": (PostgresTransaction, "write"),
        "after_commit": (service, "_retrying"),
    }[step]
    original = getattr(module, name)
    monkeypatch.setattr(module, name, after(original))
    with pytest.raises(Crash):
        await submit(claims, "t1", "k", claim())
    monkeypatch.setattr(module, name, original)
    status, payload = await submit(claims, "t1", "k", claim())
    again = await submit(claims, "t1", "k", claim())
    assert status == 201
    assert again == (status, payload)
    assert await granted_total(ledger) == AMOUNT


class Overlap:
    """Holds the first `size` naive requests between their read and their write until all of
    them have read, as concurrent requests overlap in production. Sleeping instead left the
    control at the mercy of the machine: when opening connections was slow, the first request
    wrote before the second had read, and the naive ledger looked correct."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read = 0
        self.all_read = asyncio.Event()

    async def __call__(self) -> None:
        self.read += 1
        if self.read >= self.size:
            self.all_read.set()
        await self.all_read.wait()


async def naive_submit(
    sessions: async_sessionmaker[AsyncSession], body: ClaimIn, overlap: Overlap
) -> None:
    """Check, then insert: read the ledger, decide, write, with no lock and no compare-and-set."""
    async with sessions() as session:
        ledger = await repository.ledger_for(
            session, "91510500MA62B8XY4F", [(body.event.matter, body.event.subject)]
        )
        applicant, events = service.calculations.validate(
            service.CalculationIn(applicant=body.applicant, events=[body.event]),
            RULES,
            dt.date(2026, 1, 1),
        )
        result = decide(applicant, events, RULES, ledger).results[0]
        await overlap()
        if result.amount > 0:
            await session.execute(
                text(
                    "INSERT INTO ledger_balance VALUES ('91510500MA62B8XY4F', :m, :s, :a) "
                    "ON CONFLICT (applicant_id, matter, subject) DO UPDATE SET granted = excluded.granted"
                ),
                {"m": body.event.matter, "s": body.event.subject, "a": result.amount},
            )
            await session.execute(
                text(
                    "INSERT INTO claim (id, tenant_id, applicant_id, applicant_kind, applicant_name, name_key, "
                    "region, matter, subject, event_date, status, initial_status, amount, entitlement, "
                    "previously_granted, duplicate_of, decision, registry_version, created_at) VALUES "
                    "(:id, 't', '91510500MA62B8XY4F', 'enterprise', '', '', '510502', :m, :s, '2020-01-01', "
                    "'granted', 'granted', :a, :a, 0, '[]', '{}', 'v', now())"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "m": body.event.matter,
                    "s": body.event.subject,
                    "a": result.amount,
                },
            )
        await session.commit()


@pytest.mark.parametrize("run", RUNS)
async def test_negative_control_the_harness_catches_a_naive_ledger(
    ledger: AsyncEngine, run: int
) -> None:
    sessions = async_sessionmaker(ledger, expire_on_commit=False)
    # Fewer than the pool's 15 connections, or the first ten would wait forever.
    overlap = Overlap(10)
    await asyncio.gather(*[naive_submit(sessions, claim(), overlap) for _ in range(200)])
    assert await granted_total(ledger) > AMOUNT, "the harness must see the double payment"


@pytest.mark.parametrize("run", RUNS)
async def test_a_thousand_claims_against_one_fund_budget(
    ledger: AsyncEngine, claims: Claims, run: int
) -> None:
    async with async_sessionmaker(ledger)() as session:
        await repository.set_budget(
            session, "测试资金", budget=Decimal("100000.00"), by="test", reason="预算", at=now()
        )
        await session.commit()
    outcomes = await submit_all(
        [
            submit(
                claims,
                f"t{i % 3}",
                uuid.uuid4().hex,
                claim(f"U{i}", "patent.utility_model.granted"),
            )
            for i in range(1000)
        ]
    )
    assert all(isinstance(o, tuple) for o in outcomes), {
        repr(o) for o in outcomes if not isinstance(o, tuple)
    }
    statuses = [orjson.loads(o[1])["status"] for o in outcomes if isinstance(o, tuple)]
    assert await granted_total(ledger) == Decimal("100000.00")  # 142 × 700 + a last 600
    assert statuses.count("budget_exhausted") == 1000 - 143
    async with ledger.connect() as connection:
        granted = await connection.scalar(text("SELECT granted FROM fund_budget"))
    assert Decimal(granted) == Decimal("100000.00")


async def test_a_budget_cut_while_a_claim_is_written_holds(
    ledger: AsyncEngine, claims: Claims, database: str
) -> None:
    """A claim that read the fund's budget before a cut committed pays no more than the cut
    leaves: its write waits for the cut's row, then finds the balance no longer fits."""
    async with async_sessionmaker(ledger)() as session:
        await repository.set_budget(
            session, "测试资金", budget=Decimal("100000.00"), by="test", reason="预算", at=now()
        )
        await session.commit()
    dsn = driver_dsn(database)
    assert dsn is not None
    cut = await asyncpg.connect(dsn)
    try:
        await cut.execute("BEGIN")
        await cut.execute("UPDATE fund_budget SET budget = 300 WHERE fund = '测试资金'")
        pending = asyncio.create_task(
            submit(claims, "t1", "k", claim("U1", "patent.utility_model.granted"))
        )
        await asyncio.sleep(0.5)  # it read the budget before the cut and waits to write
        await cut.execute("COMMIT")
        status, body = await pending
    finally:
        await cut.close()
    assert status == 201
    assert orjson.loads(body)["amount"] == "300.00"
    async with ledger.connect() as connection:
        granted = await connection.scalar(text("SELECT granted FROM fund_budget"))
    assert Decimal(granted) == Decimal("300.00")


async def test_a_grant_is_revoked_after_its_fund_was_cut_below_what_it_granted(
    ledger: AsyncEngine, claims: Claims
) -> None:
    sessions = async_sessionmaker(ledger, expire_on_commit=False)
    async with sessions() as session:
        await repository.set_budget(
            session, "测试资金", budget=Decimal("100000.00"), by="test", reason="预算", at=now()
        )
        await session.commit()
    status, body = await submit(claims, "t1", "k", claim("U1", "patent.utility_model.granted"))
    assert status == 201
    status, _ = await submit(claims, "t1", "k2", claim("U2", "patent.utility_model.granted"))
    assert status == 201
    async with sessions() as session:  # below the 1,400 granted
        await repository.set_budget(
            session, "测试资金", budget=Decimal("0"), by="test", reason="预算收回", at=now()
        )
        await session.commit()
    await service.revoke(
        sessions, Locks(), claim_id=orjson.loads(body)["id"],
        caller=service.Caller(tenant_id="t1"), reason="追回", now=now,
    )  # fmt: skip
    async with ledger.connect() as connection:
        granted = await connection.scalar(text("SELECT granted FROM fund_budget"))
    assert Decimal(granted) == Decimal("700.00")
