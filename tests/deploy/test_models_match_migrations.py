"""Each service's models declare the schema its migrations make, on PostgreSQL and on SQLite: a
migration written from the models (`alembic revision --autogenerate`) would otherwise propose to
drop a guard the migrations made, such as one current version per document. And every migration
runs down to an empty database and up again."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from subsidy_common.database import alembic_config, create_engine, migrate

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def differences(connection: Connection, service: str) -> list[Any]:
    """What a migration written from the service's models would change. The services' models
    share SQLModel's one metadata: only the service's own tables are compared."""
    models = importlib.import_module(f"{service}.models")
    own = {
        value.__table__.name
        for value in vars(models).values()
        if isinstance(value, type) and value.__module__ == models.__name__
        and hasattr(value, "__table__")
    }  # fmt: skip

    def included(item: Any, name: str | None, kind: str, reflected: bool, _: Any) -> bool:
        table = name if kind == "table" else getattr(getattr(item, "table", None), "name", None)
        return table in own

    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True, "include_object": included},
    )
    return list(compare_metadata(context, models.metadata))


@pytest.fixture(params=["postgresql", "sqlite"])
async def empty_url(
    request: pytest.FixtureRequest,
    database_factory: Callable[[str], Awaitable[str]],
    tmp_path: Path,
) -> str:
    """An empty database of each kind."""
    if request.param == "postgresql":
        return await database_factory("drift")
    return f"sqlite+aiosqlite:///{tmp_path / 'drift'}.db"


async def differences_in(url: str, service: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(differences, service)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", ["registry", "calculator", "gateway"])
async def test_the_models_are_the_migrated_schema(service: str, empty_url: str) -> None:
    await migrate(MIGRATIONS / service, empty_url)
    assert await differences_in(empty_url, service) == []


@pytest.mark.parametrize("service", ["registry", "calculator", "gateway"])
async def test_the_migrations_run_down_and_up_again(service: str, empty_url: str) -> None:
    config = alembic_config(MIGRATIONS / service, empty_url)
    for step, revision in ((command.upgrade, "head"), (command.downgrade, "base"),
                           (command.upgrade, "head")):  # fmt: skip
        await asyncio.to_thread(step, config, revision)
    assert await differences_in(empty_url, service) == []
