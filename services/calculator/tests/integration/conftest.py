"""What the calculator's integration tests share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest


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
