"""Ledgers read for calculations: outside any transaction, many applicants at a time.

A calculation only reads what was granted; claims read it again under the applicant's lock.
On PostgreSQL the reads go straight to asyncpg with a prepared statement (no session, no
transaction, no pool ping), which is most of a calculation's cost otherwise; on SQLite they go
through SQLAlchemy like everything else.
"""

from __future__ import annotations

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
        """One applicant's ledger."""
        return (await self.many([applicant_id])).get(applicant_id, EMPTY_LEDGER)

    async def many(self, applicant_ids: Sequence[str]) -> dict[str, Ledger]:
        """The ledgers of these applicants, in one round trip; absent ones granted nothing."""
        if self._pool is None:
            async with self._sessions() as session:
                return await repository.ledgers_for(session, applicant_ids)
        ids = list(dict.fromkeys(applicant_ids))
        return repository.ledgers(await self._pool.fetch(repository.LEDGERS_SQL, ids))
