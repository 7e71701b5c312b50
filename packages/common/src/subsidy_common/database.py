"""Engines, migrations on start and readiness checks, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry


def normalise_url(url: str) -> str:
    """Use the async driver whatever the URL names: `postgresql://` becomes asyncpg."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """Whether a URL names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, pool_size: int = 10, pool_timeout: float = 5.0, echo: bool = False
) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and foreign keys."""
    url = normalise_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=pool_timeout,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def _sqlite_pragmas(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(script_location: Path, url: str) -> Config:
    """An Alembic configuration for one service's migrations and database."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade_head(script_location: Path, url: str) -> None:
    """Apply every migration not yet applied (blocking; run it in a thread from async code)."""
    command.upgrade(alembic_config(script_location, url), "head")


async def migrate(script_location: Path, url: str) -> None:
    """Apply the migrations without blocking the event loop."""
    await asyncio.to_thread(upgrade_head, script_location, url)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query (the caller bounds the wait)."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
