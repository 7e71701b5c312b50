"""The registry application: `uvicorn --factory registry.main:create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from subsidy_common.app import service_app
from subsidy_common.database import create_engine, migrate, ping
from subsidy_common.health import Check
from subsidy_common.logs import configure_logging

from registry.config import Settings
from registry.db import session_factory
from registry.documents import service as document_service
from registry.documents.endpoints import router as documents_router
from registry.matters.endpoints import router as matters_router
from registry.policy_files.integrity import check_policy_set
from registry.policy_files.loader import (
    PolicyFilesInvalid,
    file_hashes,
    read_policy_dir,
    read_reference_files,
    tree_digest,
)
from registry.policy_files.reference import MatterFile, RegionFile
from registry.policy_load import load_policy_set, loaded_digest
from registry.regions.endpoints import router as regions_router
from registry.snapshot.endpoints import router as snapshot_router
from registry.snapshot.service import SnapshotCache

SERVICE = "registry"

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the registry app; nothing is connected until the app starts."""
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
        app.state.snapshots = SnapshotCache()
        try:
            if settings.load_policies_on_start:
                await _load_policies(app, settings)
            yield
        finally:
            await engine.dispose()

    def checks() -> Mapping[str, Check]:
        async def database() -> None:
            await ping(app.state.engine)

        return {"database": database}

    app = service_app(
        title="Subsidy policy registry",
        description="Internal: documents, clauses, versions and audit. Public through the gateway.",
        version="1.0.0",
        settings=settings,
        lifespan=lifespan,
        checks=checks,
        routers=[regions_router, matters_router, documents_router, snapshot_router],
        docs=settings.environment != "production",
    )
    app.state.settings = settings
    return app


async def _load_policies(app: FastAPI, settings: Settings) -> None:
    """Check the policy files and record what changed; nothing to do if none did.

    The digest of the directory (every file's hash, and the code checking them) is compared
    with the one stored when it was last loaded whole: if equal, the files were checked and
    loaded then, and only the reference files are read, for the admin writes' checks.
    """
    root = settings.policies_dir
    async with app.state.sessions() as session:
        unchanged = await loaded_digest(session) == tree_digest(file_hashes(root))
    if unchanged:
        regions, matters = read_reference_files(root)
        _keep_reference(app, regions, matters)
        log.info("policy files unchanged since they were loaded")
        return
    policy_set = read_policy_dir(root)
    errors = [p for p in check_policy_set(policy_set) if p.severity == "error"]
    if errors:
        raise PolicyFilesInvalid(errors)
    _keep_reference(app, policy_set.regions, policy_set.matters)
    async with app.state.sessions() as session:
        recorded = await load_policy_set(session, policy_set)
        await session.commit()
    log.info("policy files loaded", extra={"documents_recorded": recorded})


def _keep_reference(app: FastAPI, regions: RegionFile, matters: MatterFile) -> None:
    app.state.reference = document_service.Reference(
        regions=frozenset(r.code for r in regions.regions),
        matters={m.key: m for m in matters.matters},
    )
