"""Ledgers read for calculations: outside any transaction, many applicants at a time.

A calculation only reads what was granted; claims read it again under the applicant's lock.
On PostgreSQL the reads go straight to asyncpg with a prepared statement (no session, no
transaction, no pool ping), which is most of a calculation's cost otherwise; on SQLite they go
through SQLAlchemy like everything else.

Single calculations that ask in the same turn of the event loop share one read: a statement
costs the calculator about as much CPU as the rest of a calculation, and one for ten applicants
costs hardly more than one for one. Each still reads the ledger as committed after it arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from subsidy_common.database import driver_dsn

from calculator.claims import repository
from calculator.db import driver_pool
from calculator.engine.model import EMPTY_LEDGER, Ledger


class LedgerReads:
    """The ledgers of applicants as committed now; an applicant with no grants has an empty one."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], pool: asyncpg.Pool | None = None
    ) -> None:
        self._sessions = sessions
        self._pool = pool
        self._gathering: _Gathering | None = None
        self._reading: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, sessions: async_sessionmaker[AsyncSession], url: str) -> LedgerReads:
        """Reads for this database: a small asyncpg pool of their own on PostgreSQL."""
        dsn = driver_dsn(url)
        if dsn is None:
            return cls(sessions)
        return cls(sessions, await driver_pool(dsn, max_size=10))

    async def close(self) -> None:
        """Close the pool, if there is one."""
        if self._pool is not None:
            await self._pool.close()

    async def one(self, applicant_id: str, subjects: Iterable[tuple[str, str]]) -> Ledger:
        """What one applicant was granted for these (matter, subject) pairs and under its caps,
        read together with the ledgers asked for in the same loop turn."""
        wanted = [(applicant_id, matter, subject) for matter, subject in subjects]
        if self._pool is None:
            return (await self.many(wanted)).get(applicant_id, EMPTY_LEDGER)
        gathering = self._gathering
        if gathering is None:
            loop = asyncio.get_running_loop()
            gathering = self._gathering = _Gathering(loop.create_future())
            loop.call_soon(self._read_gathered)  # after every callback ready in this turn
        gathering.wanted.extend(wanted)
        # Shielded: a caller that gives up must not cancel the read the others wait for.
        ledgers = await asyncio.shield(gathering.ledgers)
        return ledgers.get(applicant_id, EMPTY_LEDGER)

    def _read_gathered(self) -> None:
        gathering, self._gathering = self._gathering, None
        assert gathering is not None
        task = asyncio.ensure_future(self._read(gathering))
        self._reading.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._reading.discard)

    async def _read(self, gathering: _Gathering) -> None:
        try:
            ledgers = await self.many(gathering.wanted)
        except asyncio.CancelledError:
            gathering.ledgers.cancel()
            raise
        except Exception as exc:
            gathering.ledgers.set_exception(exc)
        else:
            gathering.ledgers.set_result(ledgers)

    async def many(self, wanted: repository.Wanted) -> dict[str, Ledger]:
        """The ledgers of these applicants as far as these (applicant, matter, subject) go, with
        their caps, in one round trip; absent ones were granted none of it."""
        if self._pool is None:
            async with self._sessions() as session:
                return await repository.ledgers_for(session, wanted)
        arguments = repository.ledgers_arguments(wanted)
        return repository.ledgers(await self._pool.fetch(repository.LEDGERS_SQL, *arguments))


class _Gathering:
    """The subjects one read will fetch, and the answer they wait for."""

    __slots__ = ("ledgers", "wanted")

    def __init__(self, ledgers: asyncio.Future[dict[str, Ledger]]) -> None:
        self.wanted: list[tuple[str, str, str]] = []
        self.ledgers = ledgers
