"""The calculator's engine, the request-scoped session, and the asyncpg pools of the paths that
use the driver directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker


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


async def _end_transaction(connection: asyncpg.Connection) -> None:
    """On release: nothing to reset (these paths set no session state, listen to nothing and
    hold no session lock), but never hand on a connection left inside a transaction. This
    skips asyncpg's reset query, a round trip on every release."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def driver_pool(dsn: str, *, max_size: int) -> asyncpg.Pool:
    """An asyncpg pool for a libpq DSN, one connection open and the rest opened as needed."""
    return await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, timeout=5, command_timeout=30, reset=_end_transaction
    )
