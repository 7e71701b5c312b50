"""What every service's Alembic `env.py` does: migrate online, one migrator at a time; and
the append-only guard several migrations put on a table."""

from __future__ import annotations

import asyncio

from alembic import context, op
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from subsidy_common.database import create_engine


def run_migrations(service: str, target_metadata: MetaData | None) -> None:
    """Run from env.py: apply migrations on the configured URL (offline mode prints SQL)."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not configured")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_online(service, url, target_metadata))


def _apply(connection: Connection, service: str, target_metadata: MetaData | None) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        if not sqlite:
            # Replicas starting together must not migrate the same database at once.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                {"name": f"migrate:{service}"},
            )
        context.run_migrations()


async def _online(service: str, url: str, target_metadata: MetaData | None) -> None:
    # No statement timeout: a replica waits for another's migration (the advisory lock) as long
    # as it takes, and a migration may rewrite a large table; the orchestrator's startup probe
    # bounds the whole.
    engine = create_engine(url, pool_size=1, command_timeout=None)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_apply, service, target_metadata)
            await connection.commit()
    finally:
        await engine.dispose()


def add_append_only_guard(table: str, message: str) -> None:
    """From a migration: the database refuses to update or delete any row of `table`, saying
    `message` (a trigger on PostgreSQL, two on SQLite)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""CREATE FUNCTION {table}_guard() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION '{message}';
            END $$ LANGUAGE plpgsql"""
        )
        op.execute(
            f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
               FOR EACH ROW EXECUTE FUNCTION {table}_guard()"""
        )
        return
    for change in ("update", "delete"):
        op.execute(
            f"""CREATE TRIGGER {table}_no_{change} BEFORE {change.upper()} ON {table}
               BEGIN SELECT RAISE(ABORT, '{message}'); END"""
        )


def drop_append_only_guard(table: str) -> None:
    """From a migration's downgrade: what `add_append_only_guard` made, taken away."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION {table}_guard()")
        return
    for change in ("update", "delete"):
        op.execute(f"DROP TRIGGER {table}_no_{change}")
