"""What the calculator's integration tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from calculator.config import Settings
from calculator.main import SERVICE
from subsidy_common.database import migrate
from testkit.claims import Desk, open_desk


@pytest.fixture(params=["postgresql", "sqlite"])
async def empty_database(
    request: pytest.FixtureRequest,
    database_factory: Callable[[str], Awaitable[str]],
    tmp_path: Path,
) -> str:
    """An empty database of each kind the calculator runs on, not yet migrated."""
    if request.param == "postgresql":
        return await database_factory("calculator")
    return f"sqlite+aiosqlite:///{tmp_path / 'calculator.db'}"


@pytest.fixture
async def desk(empty_database: str) -> AsyncIterator[Desk]:
    """Claims on an empty database of each kind, migrated to the head."""
    await migrate(Settings().migrations_dir(SERVICE), empty_database)
    async with open_desk(empty_database) as opened:
        yield opened
