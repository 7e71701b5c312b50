"""Ledgers read for calculations: outside any transaction, many applicants at a time.

A calculation only reads what was granted; claims read it again under the applicant's lock.
On PostgreSQL the reads go straight to asyncpg with a prepared statement (no session, no
transaction, no pool ping), which is most of a calculation's cost otherwise; on SQLite they go
through SQLAlchemy like everything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import literal, select, union_all
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calculator.claims.repository import balance, cap
from calculator.engine.model import EMPTY_LEDGER, Ledger

# kind 0: a (matter, subject) balance; kind 1: a cap balance, year 0 for the cumulative one.
_LEDGERS_SQL = """
SELECT applicant_id, 0 AS kind, matter AS a, subject AS b, 0 AS year, granted
  FROM ledger_balance WHERE applicant_id = ANY($1::text[])
UNION ALL
SELECT applicant_id, 1, cap_key, '', year, granted
  FROM cap_balance WHERE applicant_id = ANY($1::text[])
"""

Row = tuple[str, int, str, str, int, Decimal]


def _ledgers(rows: Iterable[Row]) -> dict[str, Ledger]:
    parts: dict[
        str,
        tuple[dict[tuple[str, str], Decimal], dict[str, Decimal], dict[tuple[str, int], Decimal]],
    ] = {}
    for applicant_id, kind, a, b, year, granted in rows:
        by_subject, by_cap, by_cap_year = parts.setdefault(applicant_id, ({}, {}, {}))
        if kind == 0:
            by_subject[(a, b)] = granted
        elif year == 0:
            by_cap[a] = granted
        else:
            by_cap_year[(a, year)] = granted
    return {
        applicant_id: Ledger(by_subject=s, by_cap=c, by_cap_year=y)
        for applicant_id, (s, c, y) in parts.items()
    }


async def _nothing_to_reset(_: asyncpg.Connection) -> None:
    """Released connections skip asyncpg's reset query (a round trip on every release): these
    reads hold no lock, listen to nothing and change no setting."""


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
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            return cls(sessions)
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=10, timeout=5, command_timeout=30, reset=_nothing_to_reset
        )
        return cls(sessions, pool)

    async def close(self) -> None:
        """Close the pool, if there is one."""
        if self._pool is not None:
            await self._pool.close()

    async def one(self, applicant_id: str) -> Ledger:
        """One applicant's ledger."""
        return (await self.many([applicant_id])).get(applicant_id, EMPTY_LEDGER)

    async def many(self, applicant_ids: Sequence[str]) -> dict[str, Ledger]:
        """The ledgers of these applicants, in one round trip; absent ones granted nothing."""
        ids = list(dict.fromkeys(applicant_ids))
        if self._pool is not None:
            rows: Iterable[Any] = await self._pool.fetch(_LEDGERS_SQL, ids)
            return _ledgers(tuple(r) for r in rows)
        subjects = select(
            balance.c.applicant_id,
            literal(0).label("kind"),
            balance.c.matter.label("a"),
            balance.c.subject.label("b"),
            literal(0).label("year"),
            balance.c.granted,
        ).where(balance.c.applicant_id.in_(ids))
        caps = select(
            cap.c.applicant_id,
            literal(1).label("kind"),
            cap.c.cap_key.label("a"),
            literal("").label("b"),
            cap.c.year,
            cap.c.granted,
        ).where(cap.c.applicant_id.in_(ids))
        async with self._sessions() as session:
            result = await session.execute(union_all(subjects, caps))
            return _ledgers(tuple(r) for r in result)
