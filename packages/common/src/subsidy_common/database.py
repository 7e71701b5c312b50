"""Engines, migrations on start and readiness checks, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:
    from alembic.config import Config


def normalise_url(url: str) -> str:
    """Use the async driver whatever the URL names: `postgresql://` becomes asyncpg."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def driver_dsn(url: str) -> str | None:
    """The libpq DSN of a PostgreSQL URL, for the paths that use asyncpg directly; else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """Whether a URL names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    pool_timeout: float = 5.0,
    echo: bool = False,
    command_timeout: float | None = 30.0,
) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and foreign keys. On PostgreSQL a
    statement is given up after `command_timeout` seconds (None: never)."""
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
        connect_args={"timeout": 5, "command_timeout": command_timeout},
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
    from alembic.config import Config  # only when migrating: a costly import

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


# Alembic keeps the running migration's context in module globals: two upgrades in one process
# at once (apps started side by side in one process) would run in each other's context.
_ONE_UPGRADE_AT_A_TIME = threading.Lock()


def upgrade_head(script_location: Path, url: str) -> None:
    """Apply every migration not yet applied (blocking; run it in a thread from async code)."""
    from alembic import command  # only when migrating: a costly import

    with _ONE_UPGRADE_AT_A_TIME:
        command.upgrade(alembic_config(script_location, url), "head")


async def migrate(script_location: Path, url: str) -> None:
    """Apply the migrations without blocking the event loop.

    A database already at the head revision (every restart but the first after an upgrade)
    is recognised with one query, without loading Alembic and its environment; anything else,
    including a check that fails, goes to Alembic, which takes the migration lock.
    """
    if await at_head(script_location, url):
        return
    await asyncio.to_thread(upgrade_head, script_location, url)


def script_heads(script_location: Path) -> frozenset[str] | None:
    """The head revisions of a script directory, read from each version file's `revision`
    and `down_revision` assignments; None when a file does not state them plainly."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((script_location / "versions").glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError:
                    return None
        revision, down = values.get("revision"), values.get("down_revision", ...)
        if not isinstance(revision, str) or down is ...:
            return None
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list):
            parents.update(str(d) for d in down)
        elif down is not None:
            return None
    heads = frozenset(revisions - parents)
    return heads or None


async def at_head(script_location: Path, url: str) -> bool:
    """Whether the database records exactly the head revisions of the scripts.

    One query through the driver itself, with no engine to set up. Anything unexpected (no
    database or version table yet, a URL the driver does not take as it is) answers False,
    and Alembic then does the real work.
    """
    heads = script_heads(script_location)
    if heads is None:
        return False
    try:
        return await _recorded_revisions(url) == heads
    except Exception:  # any doubt means: let Alembic look
        return False


_VERSIONS_QUERY = "SELECT version_num FROM alembic_version"


async def _recorded_revisions(url: str) -> frozenset[str]:
    parsed = make_url(normalise_url(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        return await asyncio.to_thread(_sqlite_revisions, parsed.database)
    if backend == "postgresql":
        import asyncpg  # the driver the engine uses, imported with it already

        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            return frozenset(str(row[0]) for row in await connection.fetch(_VERSIONS_QUERY))
        finally:
            await connection.close()
    raise LookupError(f"no direct check for {backend}")


def _sqlite_revisions(database: str) -> frozenset[str]:
    # Read-only: a database file that does not exist yet is not created here.
    uri = f"{Path(database).resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as connection:
        return frozenset(str(row[0]) for row in connection.execute(_VERSIONS_QUERY))


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query (the caller bounds the wait)."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
