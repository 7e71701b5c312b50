"""The calculator application: `uvicorn --factory calculator.main:create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from subsidy_common.app import service_app
from subsidy_common.database import create_engine, migrate, ping
from subsidy_common.downstream import downstream_client
from subsidy_common.health import Check
from subsidy_common.logs import configure_logging

from calculator.config import Settings
from calculator.db import session_factory

SERVICE = "calculator"


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
        app.state.registry = downstream_client(
            settings.registry_url, timeout=settings.registry_timeout
        )
        try:
            yield
        finally:
            await app.state.registry.aclose()
            await engine.dispose()

    def checks() -> Mapping[str, Check]:
        async def database() -> None:
            await ping(app.state.engine)

        return {"database": database}

    app = service_app(
        title="Subsidy calculator",
        description="Internal: entitlements and the claims ledger. Public through the gateway.",
        version="1.0.0",
        settings=settings,
        lifespan=lifespan,
        checks=checks,
        docs=settings.environment != "production",
    )
    app.state.settings = settings
    return app
