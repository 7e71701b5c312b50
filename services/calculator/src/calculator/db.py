"""The calculator's engine and the request-scoped session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from calculator.claims.ledger import Claims
from calculator.claims.locks import Locks
from calculator.claims.postgres import PostgresClaims
from calculator.claims.sqlite import SessionClaims


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; the request owns the transaction and commits at the end."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# Committed before the response is sent, so a client that got 201 can read what it wrote.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def driver_dsn(url: str) -> str | None:
    """The libpq DSN of a PostgreSQL URL, for the paths that use asyncpg directly; else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def open_claims(url: str, sessions: async_sessionmaker[AsyncSession], locks: Locks) -> Claims:
    """Claims on asyncpg for PostgreSQL; through the sessions (and this process's locks) else."""
    dsn = driver_dsn(url)
    if dsn is None:
        return SessionClaims(sessions, locks)
    return await PostgresClaims.open(dsn)
