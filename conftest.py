"""Test plumbing shared by every suite: PostgreSQL must be there, and databases are throwaway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from testkit import admin_url, create_database, drop_database, dsn

HOW_TO_GET_POSTGRES = """
No PostgreSQL is reachable at {url} ({error}).

The tests run against a real PostgreSQL server. Start one and point TEST_DATABASE_URL at it:
  - on Debian/Ubuntu: sudo apt-get install postgresql && sudo pg_ctlcluster 15 main start
  - or with Docker: docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15
  - then: TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make test
"""


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run at all without PostgreSQL: nothing is skipped silently."""

    async def probe() -> None:
        connection = await asyncpg.connect(dsn(admin_url()), timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.exit(HOW_TO_GET_POSTGRES.format(url=admin_url(), error=exc), returncode=3)


@pytest.fixture(scope="session")
async def database_factory() -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """Make throwaway databases; all of them are dropped when the session ends."""
    made: list[str] = []

    async def make(prefix: str) -> str:
        url = await create_database(prefix)
        made.append(url)
        return url

    yield make
    for url in made:
        await drop_database(url)
