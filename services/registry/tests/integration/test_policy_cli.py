"""`registry-policies import` loads the files into a registry database, once per change."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from registry.policy_files.cli import main
from sqlalchemy import text
from subsidy_common.database import create_engine

POLICIES = Path(__file__).resolve().parents[4] / "policies"


async def versions(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(text("SELECT count(*) FROM document_version"))
    finally:
        await engine.dispose()
    return int(count or 0)


async def test_import_records_each_document_once(
    database_factory: Callable[[str], Awaitable[str]],
) -> None:
    url = await database_factory("import")
    assert await asyncio.to_thread(main, ["import", str(POLICIES), "--database-url", url]) == 0
    first = await versions(url)
    assert first == len(list((POLICIES / "documents").glob("**/*.yaml")))
    assert await asyncio.to_thread(main, ["import", str(POLICIES), "--database-url", url]) == 0
    assert await versions(url) == first
