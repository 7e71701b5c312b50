"""The calculator application: `uvicorn --factory calculator.main:create_app`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from subsidy_common.app import service_app
from subsidy_common.database import create_engine, driver_dsn, migrate, ping
from subsidy_common.downstream import downstream_client
from subsidy_common.health import Check
from subsidy_common.logs import configure_logging

from calculator.calculations.endpoints import router as calculations_router
from calculator.claims.endpoints import router as claims_router
from calculator.claims.ledger import Claims
from calculator.claims.locks import Locks
from calculator.claims.postgres import PostgresClaims
from calculator.claims.reads import LedgerReads
from calculator.claims.sqlite import SessionClaims
from calculator.config import Settings
from calculator.db import session_factory
from calculator.observability import DecisionMetrics
from calculator.registry_client import SnapshotStore
from calculator.snapshot_endpoints import router as snapshot_router

SERVICE = "calculator"


async def open_claims(url: str, sessions: async_sessionmaker[AsyncSession], locks: Locks) -> Claims:
    """Claims on asyncpg for PostgreSQL; through the sessions (and this process's locks) else."""
    dsn = driver_dsn(url)
    if dsn is None:
        return SessionClaims(sessions, locks)
    return await PostgresClaims.open(dsn)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the calculator app; nothing is connected until the app starts."""
    settings = settings or Settings()
    configure_logging(SERVICE, settings.log_level)
    url = settings.resolved_database_url(SERVICE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await migrate(settings.migrations_dir(SERVICE), url)
        engine = create_engine(url)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.ledger_reads = await LedgerReads.open(app.state.sessions, url)
        app.state.locks = Locks()
        app.state.claims = await open_claims(url, app.state.sessions, app.state.locks)
        app.state.registry = downstream_client(
            settings.registry_url, timeout=settings.registry_timeout
        )
        store = SnapshotStore(app.state.registry, refresh_seconds=settings.snapshot_refresh_seconds)
        app.state.snapshots = store
        await store.refresh()
        refresher = asyncio.create_task(store.keep_fresh())
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await app.state.registry.aclose()
            await app.state.claims.close()
            await app.state.ledger_reads.close()
            await engine.dispose()

    def checks() -> Mapping[str, Check]:
        async def database() -> None:
            await ping(app.state.engine)

        async def registry_snapshot() -> dict[str, Any]:
            return app.state.snapshots.health()  # type: ignore[no-any-return]

        return {"database": database, "registry_snapshot": registry_snapshot}

    app = service_app(
        title="Subsidy calculator",
        description="Internal: entitlements and the claims ledger. Public through the gateway.",
        version="1.0.0",
        settings=settings,
        lifespan=lifespan,
        checks=checks,
        routers=[calculations_router, claims_router, snapshot_router],
        docs=settings.environment != "production",
        streaming_paths=frozenset({"/v1/calculations/batch"}),
    )
    app.state.settings = settings
    app.state.decision_metrics = DecisionMetrics(app.state.metrics)
    return app
