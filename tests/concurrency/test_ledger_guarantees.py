"""Never pay twice, under load and under faults, on a real PostgreSQL that commits.

Each test runs three times: one green run proves nothing. Each storm runs the real ledger and a
naive one (check, then insert) through the same harness and the same checks: the checks must
catch the naive ledger's double payments and overrun caps, or they are blind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import orjson
import pytest
from calculator.calculations.endpoints import check_scope
from calculator.claims import repository, service
from calculator.claims.ledger import Claims
from calculator.claims.locks import Locks, applicant_lock, key_lock
from calculator.claims.postgres import PostgresClaims
from calculator.claims.schemas import ClaimIn
from calculator.config import Settings
from calculator.engine.rules import RuleSet, compile_snapshot
from calculator.main import SERVICE
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from subsidy_common.database import create_engine, driver_dsn, migrate
from testkit.ledgers import Crashing, NaiveClaims, Step

RUNS = [pytest.param(i, id=f"run{i}") for i in range(3)]
REGIONS = [
    {"code": "510000", "name": "四川省", "parent": None, "level": "province"},
    {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
    {"code": "510502", "name": "江阳区", "parent": "510500", "level": "county"},
]
AMOUNT = Decimal("3000.00")
CAP = Decimal("30000.00")  # 300 grants of 100: reached while locked claims queue
SMALL_CAP = Decimal("300.00")  # 3 grants of 100: reached by the first optimistic attempts
BUDGET = Decimal("100000.00")
POOL = 15


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
                    "startup.demo_day",
                    "patent.design.granted",
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
                        {**clause, "id": "demo", "matter": "startup.demo_day",
                         "amount": {"kind": "fixed", "value": "100"},
                         "caps": {"cumulative": str(SMALL_CAP), "cumulative_key": "demo"}},
                        {**clause, "id": "design", "matter": "patent.design.granted",
                         "amount": {"kind": "fixed", "value": "700"},
                         "funding_source": "测试资金",
                         "caps": {"cumulative": str(BUDGET), "cumulative_key": "design"}},
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
    opened = await PostgresClaims.open(dsn, max_size=POOL, acquire_timeout=120)
    yield opened
    await opened.close()


_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


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


# The shared harness: the real ledger and the naive one go through the same storms and the same
# checks. A check that passes on the naive ledger could not see a double payment.


@dataclass(frozen=True, slots=True)
class UnderTest:
    """A `Claims` implementation the storms run against."""

    name: str
    claims: Claims

    @property
    def naive(self) -> bool:
        return self.name == "naive"


@pytest.fixture(params=["postgres", "naive"])
async def under_test(request: pytest.FixtureRequest, database: str) -> AsyncIterator[UnderTest]:
    # Both on pools of 15 connections: a thousand requests queue for a connection, not fail.
    dsn = driver_dsn(database)
    assert dsn is not None
    opened: PostgresClaims | NaiveClaims
    if request.param == "naive":
        opened = await NaiveClaims.open(dsn, max_size=POOL, acquire_timeout=120)
    else:
        opened = await PostgresClaims.open(dsn, max_size=POOL, acquire_timeout=120)
    yield UnderTest(request.param, opened)
    await opened.close()


@dataclass(frozen=True, slots=True)
class Tally:
    """What a storm of concurrent claims left: the answers, and what the database holds."""

    answers: list[tuple[int, bytes]]
    in_flight: int
    """409s: the key's first request was still at work"""
    failures: list[BaseException]
    paid: list[Decimal]
    """the amount of each claim that paid"""
    balances: Decimal
    """the subjects' balances, summed"""
    caps: Decimal
    """the cumulative caps' balances, summed"""
    fund: Decimal
    """what the funds' budgets say they granted, summed"""

    @property
    def granted(self) -> Decimal:
        return sum(self.paid, Decimal(0))

    def statuses(self) -> list[str]:
        return [orjson.loads(body)["status"] for _, body in self.answers]


async def warm(claims: Claims) -> None:
    """Open every connection of the pool and read through each, as in a service that has been
    up a while: else the first request, on the one connection open or the first backend to
    have planned the read, may be done before the others have read anything."""
    everyone = asyncio.Barrier(POOL)

    async def hold() -> None:
        try:
            async with claims.transaction(optimistic=True) as tx:
                await tx.read("warm", "warm", "91510500MA62B8XY4F", "warm", "warm")
                await everyone.wait()
        except BaseException:
            await everyone.abort()  # the others would wait for this one, holding the pool
            raise

    await asyncio.gather(*(hold() for _ in range(POOL)))


async def storm(
    claims: Claims, engine: AsyncEngine, requests: list[tuple[str, str, ClaimIn]]
) -> Tally:
    """Submit every (tenant, key, body) at once; count the answers and what was paid."""
    await warm(claims)
    outcomes = await asyncio.gather(
        *(submit(claims, tenant, key, body) for tenant, key, body in requests),
        return_exceptions=True,
    )
    async with engine.connect() as connection:
        paid = (
            await connection.scalars(
                text("SELECT amount FROM claim WHERE status IN ('granted', 'topped_up')")
            )
        ).all()
        balances, caps, fund = (
            await connection.execute(
                text(
                    "SELECT (SELECT coalesce(sum(granted), 0) FROM ledger_balance),"
                    " (SELECT coalesce(sum(granted), 0) FROM cap_balance WHERE year = 0),"
                    " (SELECT coalesce(sum(granted), 0) FROM fund_budget)"
                )
            )
        ).one()
    return Tally(
        answers=[o for o in outcomes if isinstance(o, tuple)],
        in_flight=sum(isinstance(o, service.IdempotencyKeyInFlight) for o in outcomes),
        failures=[
            o
            for o in outcomes
            if isinstance(o, BaseException) and not isinstance(o, service.IdempotencyKeyInFlight)
        ],
        paid=[Decimal(a) for a in paid],
        balances=Decimal(balances),
        caps=Decimal(caps),
        fund=Decimal(fund),
    )


def assert_one_grant_one_answer(tally: Tally, replay: tuple[int, bytes]) -> None:
    """One event, one key, a thousand times: one grant, every answer the first, no 5xx."""
    assert tally.paid == [AMOUNT], f"paid {len(tally.paid)} times, {tally.granted} in all"
    assert tally.balances == AMOUNT
    assert not tally.failures, tally.failures[:3]
    assert len(tally.answers) + tally.in_flight == 1000
    assert {payload for _, payload in tally.answers} == {replay[1]}, "every answer is the first"
    assert replay[0] == 201


def assert_one_grant_and_duplicates(tally: Tally) -> None:
    """One event, a thousand keys: one grant, 999 duplicates, no 5xx."""
    assert tally.paid == [AMOUNT], f"paid {len(tally.paid)} times, {tally.granted} in all"
    assert tally.balances == AMOUNT
    assert not tally.failures, tally.failures[:3]
    assert tally.in_flight == 0
    assert all(status == 201 for status, _ in tally.answers)
    statuses = tally.statuses()
    assert statuses.count("granted") == 1
    assert statuses.count("duplicate") == 999


def assert_cap_held(tally: Tally, cap: Decimal) -> None:
    """A thousand claims of 100 against a cumulative cap: the total is the cap."""
    assert tally.granted == cap, f"paid {tally.granted} against a cap of {cap}"
    assert tally.paid == [Decimal(100)] * int(cap / 100)
    assert tally.caps == cap
    assert tally.balances == cap
    assert not tally.failures, {repr(o) for o in tally.failures}
    assert len(tally.answers) == 1000
    assert tally.statuses().count("cap_exhausted") == 1000 - int(cap / 100)


def assert_budget_held(tally: Tally) -> None:
    """A thousand claims of 700 against a budget of 100,000: 142 × 700 and a last 600."""
    assert tally.granted == BUDGET, f"paid {tally.granted} from a budget of {BUDGET}"
    assert sorted(tally.paid) == [Decimal(600), *[Decimal(700)] * 142]
    assert tally.fund == BUDGET
    assert not tally.failures, {repr(o) for o in tally.failures}
    assert tally.statuses().count("budget_exhausted") == 1000 - 143


@pytest.mark.parametrize("run", RUNS)
async def test_one_event_one_key_a_thousand_times(
    ledger: AsyncEngine, under_test: UnderTest, run: int
) -> None:
    body = claim()
    tally = await storm(under_test.claims, ledger, [("t1", "same-key", body)] * 1000)
    # after the storm, the key replays the same bytes
    replay = await submit(under_test.claims, "t1", "same-key", body)
    if under_test.naive:
        assert len(tally.paid) > 1, "the naive ledger paid once: the harness proves nothing"
        with pytest.raises(AssertionError, match="paid"):
            assert_one_grant_one_answer(tally, replay)
    else:
        assert_one_grant_one_answer(tally, replay)


@pytest.mark.parametrize("run", RUNS)
async def test_one_event_a_thousand_keys_from_several_tenants(
    ledger: AsyncEngine, under_test: UnderTest, run: int
) -> None:
    body = claim()
    tally = await storm(
        under_test.claims,
        ledger,
        [(f"tenant-{i % 5}", uuid.uuid4().hex, body) for i in range(1000)],
    )
    if under_test.naive:
        assert len(tally.paid) > 1, "the naive ledger paid once: the harness proves nothing"
        with pytest.raises(AssertionError, match="paid"):
            assert_one_grant_and_duplicates(tally)
    else:
        assert_one_grant_and_duplicates(tally)


@pytest.mark.parametrize(
    ("matter", "cap"),
    [
        pytest.param("startup.project_incubated", CAP, id="300-grants"),
        pytest.param("startup.demo_day", SMALL_CAP, id="3-grants"),
    ],
)
@pytest.mark.parametrize("run", RUNS)
async def test_a_thousand_claims_against_one_cumulative_cap(
    ledger: AsyncEngine, under_test: UnderTest, run: int, matter: str, cap: Decimal
) -> None:
    tally = await storm(
        under_test.claims,
        ledger,
        [("t1", uuid.uuid4().hex, claim(f"P{i}", matter)) for i in range(1000)],
    )
    if under_test.naive:
        assert tally.granted > cap, "the naive ledger held the cap: the harness proves nothing"
        with pytest.raises(AssertionError, match="against a cap"):
            assert_cap_held(tally, cap)
    else:
        assert_cap_held(tally, cap)


@pytest.mark.parametrize("run", RUNS)
async def test_a_thousand_claims_against_one_fund_budget(
    ledger: AsyncEngine, under_test: UnderTest, run: int
) -> None:
    async with async_sessionmaker(ledger)() as session:
        await repository.set_budget(
            session, "测试资金", budget=BUDGET, by="test", reason="预算", at=now()
        )
        await session.commit()
    tally = await storm(
        under_test.claims,
        ledger,
        [
            (f"t{i % 3}", uuid.uuid4().hex, claim(f"U{i}", "patent.utility_model.granted"))
            for i in range(1000)
        ],
    )
    if under_test.naive:
        assert tally.granted > BUDGET, (
            "the naive ledger held the budget: the harness proves nothing"
        )
        with pytest.raises(AssertionError, match="from a budget"):
            assert_budget_held(tally)
    else:
        assert_budget_held(tally)


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
        await holder.execute(_LOCK, lock)
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
            with pytest.raises(service.IdempotencyKeyInFlight) as busy:
                await pending
            assert busy.value.headers == {"Retry-After": "1"}  # a moment, not a mistake
            assert await granted_total(ledger) == 0
            await holder.execute("COMMIT")
            status, _ = await submit(claims, "t1", "k", claim())
            assert status == 201
    finally:
        await holder.close()
    assert await granted_total(ledger) == AMOUNT


class Crash(Exception):
    """The process dies: an exception no layer catches."""


ADVISORY_HOLDERS = """SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory'
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
WRITTEN = """SELECT (SELECT count(*) FROM claim), (SELECT count(*) FROM ledger_balance),
    (SELECT count(*) FROM cap_balance), (SELECT count(*) FROM idempotency_record)"""
CRASHES = [
    # The first attempt takes no lock, and its write commits by itself.
    *(
        pytest.param("optimistic", step, "error", id=f"optimistic-after-{step}")
        for step in ("own", "read", "write", "commit")
    ),
    # A locked attempt: its locks held, its writes not committed until the block ends. The
    # process raises, or its task is cancelled (a client gone, a shutdown), or it dies and
    # PostgreSQL sees the connection drop.
    *(
        pytest.param("locked", step, how, id=f"locked-after-{step}-{how}")
        for step in ("own", "read", "write")
        for how in ("error", "cancel", "lost")
    ),
    pytest.param("locked", "commit", "error", id="locked-after-commit-error"),
]


@pytest.mark.parametrize(("path", "step", "how"), CRASHES)
@pytest.mark.parametrize("run", RUNS)
async def test_a_crash_at_each_step_then_a_retry_grants_once(
    ledger: AsyncEngine,
    claims: Claims,
    database: str,
    run: int,
    path: str,
    step: Step,
    how: str,
) -> None:
    """A claim dies right after one step of its first attempt, or of the locked attempt after
    it; no lock is left, nothing uncommitted is kept, and a retry with the same key is granted
    once."""
    dsn = driver_dsn(database)
    assert dsn is not None
    watcher = await asyncpg.connect(dsn)
    stopped = asyncio.Event()

    async def die(step: str) -> None:
        if how == "cancel":
            stopped.set()
            await asyncio.Event().wait()  # until the task is cancelled
        if how == "lost":
            # The one backend holding advisory locks now is the dying claim's.
            [holder] = await watcher.fetch(ADVISORY_HOLDERS)
            assert await watcher.fetchval("SELECT pg_terminate_backend($1, 10000)", holder["pid"])
        raise Crash(step)

    crashing = Crashing(claims, step=step, locked=path == "locked", die=die)
    try:
        if path == "locked":
            # A locked claim holds the applicant: the first attempt's write refuses, and the
            # retry takes the locks once the holder commits.
            holder = await asyncpg.connect(dsn)
            try:
                await holder.execute("BEGIN")
                await holder.execute(_LOCK, applicant_lock("91510500MA62B8XY4F"))
                pending = asyncio.create_task(submit(crashing, "t1", "k", claim()))
                async with asyncio.timeout(10):
                    await crashing.locked_attempt.wait()
                await holder.execute("COMMIT")
            finally:
                await holder.close()
        else:
            pending = asyncio.create_task(submit(crashing, "t1", "k", claim()))
        if how == "cancel":
            await stopped.wait()
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
        else:
            with pytest.raises(Crash):
                await pending
        assert crashing.crashed == step
        assert crashing.attempts == (
            ["optimistic"] if path == "optimistic" else ["optimistic", "locked"]
        )
        assert await watcher.fetch(ADVISORY_HOLDERS) == [], "a crashed claim left a lock held"
        committed = step == "commit" or (path == "optimistic" and step == "write")
        written = await watcher.fetchrow(WRITTEN)
        assert written is not None
        assert tuple(written) == ((1, 1, 0, 1) if committed else (0, 0, 0, 0))
    finally:
        await watcher.close()
    status, payload = await submit(crashing, "t1", "k", claim())
    again = await submit(claims, "t1", "k", claim())
    assert status == 201
    assert again == (status, payload)
    assert orjson.loads(payload)["status"] == "granted"
    assert await granted_total(ledger) == AMOUNT
    async with ledger.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM claim")) == 1


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


DEADLOCKS = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"


async def deadlocks(dsn: str) -> int:
    """Deadlocks PostgreSQL has detected in the test's database; a backend reports its count
    when it exits, so the pools are closed before this is read."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        return int(await connection.fetchval(DEADLOCKS))
    finally:
        await connection.close()


@pytest.mark.parametrize("run", RUNS)
async def test_claims_and_revocations_on_one_fund_do_not_deadlock(database: str, run: int) -> None:
    """An applicant's grants from a budgeted fund, under a cumulative cap, are revoked while the
    same applicant claims those subjects again, three times each. A claim's unlocked
    write, which moved the fund's balance and then the applicant's cap, once waited for a
    revocation holding the cap while the revocation waited for the fund: PostgreSQL broke the
    cycle after a second, with both connections held. The unlocked write now takes the locks
    before it touches a row."""
    dsn = driver_dsn(database)
    assert dsn is not None
    engine = create_engine(database, pool_size=POOL, pool_timeout=120)
    claims = await PostgresClaims.open(dsn, max_size=POOL, acquire_timeout=120)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    design = "patent.design.granted"
    try:
        async with sessions() as session:
            await repository.set_budget(
                session, "测试资金", budget=BUDGET, by="test", reason="预算", at=now()
            )
            await session.commit()
        granted = [
            orjson.loads((await submit(claims, "t1", f"g{i}", claim(f"G{i}", design)))[1])["id"]
            for i in range(100)
        ]
        before = await deadlocks(dsn)

        async def revoke(claim_id: str) -> bytes:
            return await service.revoke(
                sessions, Locks(), claim_id=claim_id,
                caller=service.Caller(tenant_id="t1"), reason="追回", now=now,
            )  # fmt: skip

        await warm(claims)
        outcomes = await asyncio.gather(
            *(revoke(claim_id) for claim_id in granted),
            *(submit(claims, "t1", f"n{i}", claim(f"G{i % 100}", design)) for i in range(300)),
            return_exceptions=True,
        )
    finally:
        await claims.close()
        await engine.dispose()
    assert not [o for o in outcomes if isinstance(o, BaseException)]
    assert await deadlocks(dsn) == before
    check = create_engine(database)
    try:
        async with check.connect() as connection:
            paid, most, fund, cap = (
                await connection.execute(
                    text(
                        "SELECT sum(paid), max(times),"
                        " (SELECT granted FROM fund_budget),"
                        " (SELECT granted FROM cap_balance WHERE year = 0)"
                        " FROM (SELECT sum(amount) AS paid, count(*) AS times FROM claim"
                        "       WHERE status IN ('granted', 'topped_up') GROUP BY subject) s"
                    )
                )
            ).one()
    finally:
        await check.dispose()
    assert most == 1, "a subject was paid twice"
    assert Decimal(paid) == Decimal(fund) == Decimal(cap) > 0
