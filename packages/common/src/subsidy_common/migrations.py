"""What every service's Alembic `env.py` does: migrate online, one migrator at a time."""

from __future__ import annotations

import asyncio

from alembic import context
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
