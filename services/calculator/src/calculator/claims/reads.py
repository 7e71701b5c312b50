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
from collections.abc import Sequence

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calculator.claims import repository
from calculator.db import driver_dsn, driver_pool
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

    async def one(self, applicant_id: str) -> Ledger:
        """One applicant's ledger, read together with those asked for in the same loop turn."""
        if self._pool is None:
            return (await self.many([applicant_id])).get(applicant_id, EMPTY_LEDGER)
        gathering = self._gathering
        if gathering is None:
            loop = asyncio.get_running_loop()
            gathering = self._gathering = _Gathering(loop.create_future())
            loop.call_soon(self._read_gathered)  # after every callback ready in this turn
        gathering.ids.append(applicant_id)
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
            ledgers = await self.many(gathering.ids)
        except asyncio.CancelledError:
            gathering.ledgers.cancel()
            raise
        except Exception as exc:
            gathering.ledgers.set_exception(exc)
        else:
            gathering.ledgers.set_result(ledgers)

    async def many(self, applicant_ids: Sequence[str]) -> dict[str, Ledger]:
        """The ledgers of these applicants, in one round trip; absent ones granted nothing."""
        if self._pool is None:
            async with self._sessions() as session:
                return await repository.ledgers_for(session, applicant_ids)
        ids = list(dict.fromkeys(applicant_ids))
        return repository.ledgers(await self._pool.fetch(repository.LEDGERS_SQL, ids))


class _Gathering:
    """Applicants whose ledgers one read will fetch, and the answer they wait for."""

    __slots__ = ("ids", "ledgers")

    def __init__(self, ledgers: asyncio.Future[dict[str, Ledger]]) -> None:
        self.ids: list[str] = []
        self.ledgers = ledgers
