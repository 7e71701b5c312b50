"""Who may touch an applicant's ledger or an idempotency key at a time.

On PostgreSQL, transaction-scoped advisory locks (held until commit or rollback, so a crash
releases them); on SQLite, which one local process uses, asyncio locks in that process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from calculator.claims.repository import driver


def key_lock(tenant_id: str, key: str) -> str:
    """The name of an idempotency key's lock."""
    return f"idem:{tenant_id}:{key}"


def applicant_lock(applicant_id: str) -> str:
    """The name of the lock on an applicant's ledger, caps included."""
    return f"applicant:{applicant_id}"


def subject_lock(matter: str, subject: str) -> str:
    """The name of the lock on a matter and subject, whichever applicant claims them: another
    applicant's claim for them decides whether a look-alike is held for review."""
    return f"subject:{matter}:{subject}"


def fund_lock(fund: str) -> str:
    """The name of the lock on a fund's budget (always taken after the applicant's)."""
    return f"fund:{fund}"


class Locks:
    """Locks per idempotency key, matter and subject, applicant and fund, taken in that order."""

    def __init__(self) -> None:
        self._held: dict[str, asyncio.Lock] = {}
        self._keys: set[tuple[str, str]] = set()

    @asynccontextmanager
    async def key(self, tenant_id: str, key: str) -> AsyncIterator[bool]:
        """Try to own an idempotency key in this process; False when another request has it.

        Only SQLite's claims need it: on PostgreSQL a claim takes the key's advisory lock in the
        same statement as its applicant's (`postgres.py`).
        """
        token = (tenant_id, key)
        if token in self._keys:
            yield False
            return
        self._keys.add(token)
        try:
            yield True
        finally:
            self._keys.discard(token)

    @asynccontextmanager
    async def applicant(self, session: AsyncSession, applicant_id: str) -> AsyncIterator[None]:
        """Hold an applicant's ledger, caps included, until the transaction ends."""
        async with self._exclusive(session, applicant_lock(applicant_id)):
            yield

    @asynccontextmanager
    async def subject(
        self, session: AsyncSession, matter: str, subject: str
    ) -> AsyncIterator[None]:
        """Hold a matter and subject, whoever claims them, until the transaction ends."""
        async with self._exclusive(session, subject_lock(matter, subject)):
            yield

    @asynccontextmanager
    async def fund(self, session: AsyncSession, fund: str) -> AsyncIterator[None]:
        """Hold a fund's budget until the transaction ends (always taken after the applicant)."""
        async with self._exclusive(session, fund_lock(fund)):
            yield

    @asynccontextmanager
    async def _exclusive(self, session: AsyncSession, name: str) -> AsyncIterator[None]:
        if (pg := await driver(session)) is not None:
            await pg.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", name)
            yield
            return
        lock = self._held.setdefault(name, asyncio.Lock())
        async with lock:
            yield
        if not lock.locked() and len(self._held) > 10_000:
            self._held.pop(name, None)
