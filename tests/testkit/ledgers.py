"""Claims for the ledger's guarantee tests: a naive ledger, to prove the harness sees a double
payment, and any ledger made to crash between two of a claim's statements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import asyncpg
import orjson
from calculator.claims.ledger import Claims, ClaimTransaction, Move, Response, Seen
from calculator.claims.postgres import CLAIM_COLUMNS, PostgresTransaction
from calculator.db import driver_pool

if TYPE_CHECKING:
    Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

_JSON = frozenset({"duplicate_of", "review", "decision"})
_RECORD = "INSERT INTO claim ({}) VALUES ({})".format(
    ", ".join(CLAIM_COLUMNS),
    ", ".join(f"${i}::json" if c in _JSON else f"${i}" for i, c in enumerate(CLAIM_COLUMNS, 1)),
)
# Check, then write what was computed: the balance is set to what the read saw plus the
# payment, whatever another request wrote meanwhile (no compare-and-set).
_SET = {
    "subject": """INSERT INTO ledger_balance (applicant_id, matter, subject, granted)
        VALUES ($1, $2, $3, $4) ON CONFLICT (applicant_id, matter, subject)
        DO UPDATE SET granted = excluded.granted""",
    "cap": """INSERT INTO cap_balance (applicant_id, cap_key, year, granted)
        VALUES ($1, $2, $3, $4) ON CONFLICT (applicant_id, cap_key, year)
        DO UPDATE SET granted = excluded.granted""",
    "fund": "UPDATE fund_budget SET granted = $2 WHERE fund = $1",
}
# The key is not what stops a second payment: a second response to it is simply not kept.
_KEEP = """INSERT INTO idempotency_record
    (tenant_id, key, request_hash, status_code, body, claim_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, key) DO NOTHING"""


class NaiveTransaction(ClaimTransaction):
    """Check, then insert: the real ledger's read, then writes with no lock, no compare-and-set
    and no key that refuses a second claim."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._reads = PostgresTransaction(connection)

    async def own(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> bool:
        return True

    async def read(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> Seen:
        return await self._reads.read(tenant_id, key, applicant_id, matter, subject)

    async def budget(self, fund: str) -> tuple[Decimal, Decimal] | None:
        row = await self._connection.fetchrow(
            "SELECT budget, granted FROM fund_budget WHERE fund = $1", fund
        )
        return None if row is None else (row["budget"], row["granted"])

    async def write(
        self, moves: Sequence[Move], claim: Mapping[str, Any], response: Response
    ) -> None:
        for move in moves:
            await self._connection.execute(_SET[move.balance], *move.key, move.seen + move.delta)
        await self._connection.execute(
            _RECORD,
            *(orjson.dumps(claim[c]).decode() if c in _JSON else claim[c] for c in CLAIM_COLUMNS),
        )
        await self._connection.execute(
            _KEEP,
            response.tenant_id,
            response.key,
            response.request_hash,
            response.status_code,
            response.body,
            response.claim_id,
            claim["created_at"],
        )


class NaiveClaims:
    """The `Claims` a first draft would write, on a pool like the real one's: each claim in one
    READ COMMITTED transaction, and never refused, so never retried."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    @classmethod
    async def open(cls, dsn: str, *, max_size: int, acquire_timeout: float) -> NaiveClaims:
        """Naive claims on a pool of their own for this libpq DSN."""
        return cls(await driver_pool(dsn, max_size=max_size), acquire_timeout)

    @asynccontextmanager
    async def transaction(self, *, optimistic: bool = False) -> AsyncIterator[ClaimTransaction]:
        """One transaction, committed when the block ends without an error."""
        async with (
            self._pool.acquire(timeout=self._acquire_timeout) as connection,
            connection.transaction(),
        ):
            yield NaiveTransaction(connection)

    async def close(self) -> None:
        """Release the connections."""
        await self._pool.close()


Step = Literal["own", "read", "write", "commit"]


class Crashing:
    """Any `Claims`, whose first transaction on one path (the optimistic first attempt, or a
    locked one) meets `die` right after one step; `commit` is after the transaction committed,
    before the response. Every transaction after that one runs untouched.

    `die` is what the crash does: raise, wait to be cancelled, or lose the connection first.
    """

    def __init__(
        self,
        claims: Claims,
        *,
        step: Step,
        locked: bool,
        die: Callable[[str], Awaitable[None]],
    ) -> None:
        self._claims = claims
        self._step = step
        self._locked = locked
        self._die = die
        self._armed = True
        self.crashed: str | None = None
        """the step the claim died after"""
        self.attempts: list[Literal["optimistic", "locked"]] = []
        self.locked_attempt = asyncio.Event()
        """set when a locked transaction begins"""

    @asynccontextmanager
    async def transaction(self, *, optimistic: bool = False) -> AsyncIterator[ClaimTransaction]:
        """The wrapped claims' transaction, crashing after the step when it is the one."""
        self.attempts.append("optimistic" if optimistic else "locked")
        if not optimistic:
            self.locked_attempt.set()
        crashes = self._armed and optimistic != self._locked
        if crashes:
            self._armed = False
        async with self._claims.transaction(optimistic=optimistic) as tx:
            yield _After(tx, {self._step}, self._crash) if crashes else tx
        if crashes and self._step == "commit":
            await self._crash("commit")

    async def close(self) -> None:
        """The wrapped claims are closed by their owner."""

    async def _crash(self, step: str) -> None:
        self.crashed = step
        await self._die(step)


class _After(ClaimTransaction):
    """A claim transaction that runs `then` after each of some of its steps."""

    def __init__(
        self, tx: ClaimTransaction, steps: set[str], then: Callable[[str], Awaitable[None]]
    ) -> None:
        self._tx = tx
        self._steps = steps
        self._then = then

    async def own(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> bool:
        owned = await self._tx.own(tenant_id, key, applicant_id, matter, subject)
        await self._after("own")
        return owned

    async def read(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> Seen:
        seen = await self._tx.read(tenant_id, key, applicant_id, matter, subject)
        await self._after("read")
        return seen

    async def budget(self, fund: str) -> tuple[Decimal, Decimal] | None:
        budget = await self._tx.budget(fund)
        await self._after("budget")
        return budget

    async def write(
        self, moves: Sequence[Move], claim: Mapping[str, Any], response: Response
    ) -> None:
        await self._tx.write(moves, claim, response)
        await self._after("write")

    async def _after(self, step: str) -> None:
        if step in self._steps:
            await self._then(step)
