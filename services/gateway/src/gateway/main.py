"""The gateway application: `uvicorn --factory gateway.main:create_app`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import Response
from subsidy_common.app import service_app
from subsidy_common.database import create_engine, driver_dsn, migrate, ping
from subsidy_common.downstream import DownstreamClient
from subsidy_common.health import Check
from subsidy_common.logs import configure_logging

from gateway.auth.principal import Authenticator, metrics_reader
from gateway.auth.ratelimit import build_rate_limiter, store_errors_counter
from gateway.auth.revocations import RevocationListener
from gateway.clients.downstream import Downstream, PassedThrough, relay
from gateway.clients.regions import RegionDirectory
from gateway.config import Settings
from gateway.contract.calculations import BatchRequest, CalculationRequest
from gateway.contract.claims import ClaimRequest, ReviewRequest, RevokeRequest
from gateway.contract.funds import BudgetRequest
from gateway.contract.policies import PolicyWrite, RepealRequest
from gateway.db import session_factory
from gateway.openapi import Problem, complete
from gateway.routes.calculations import router as calculations_router
from gateway.routes.claims import router as claims_router
from gateway.routes.funds import router as funds_router
from gateway.routes.policies import admin_router as policies_admin_router
from gateway.routes.policies import router as policies_router
from gateway.routes.reference import router as reference_router
from gateway.tenants import service as tenant_service
from gateway.tenants.endpoints import audit_router as tenant_audit_router
from gateway.tenants.endpoints import router as tenants_router
from gateway.tenants.schemas import KeyIssue, TenantCreate

SERVICE = "gateway"
DESCRIPTION = """\
惠企政策与人才政策补贴计算服务的公开接口。区县（county）和园区（park）系统以各自的 API 密钥调用。

The public API of the subsidy calculation backend: reference data, policies, calculations
and claims. Every route needs `Authorization: Bearer <api key>` except `/healthz`, `/readyz`
and `/openapi.json`. Errors are RFC 9457 `application/problem+json`.
"""

log = logging.getLogger(__name__)
# Within the 2 s a readiness check has (`health_router`): a downstream that hangs is reported as
# unavailable, as one that refuses is, not turned into the gateway's own unreadiness.
DOWNSTREAM_READY_SECONDS = 1.5


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway app; nothing is connected until the app starts."""
    settings = settings or Settings()
    configure_logging(SERVICE, settings.log_level)
    url = settings.resolved_database_url(SERVICE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await migrate(settings.migrations_dir(SERVICE), url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        timeouts: dict[str, Any] = {
            "timeout": settings.downstream_timeout,
            "connect_timeout": settings.downstream_connect_timeout,
        }
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.authenticator = Authenticator(sessions, settings.key_cache_seconds)
        revocations = None
        if (dsn := driver_dsn(url)) is not None:
            revocations = RevocationListener(dsn, app.state.authenticator.forget)
            revocations.start()
        app.state.revocations = revocations
        app.state.rate_limiter = build_rate_limiter(
            settings.rate_limit,
            settings.redis_url,
            key_prefix=settings.rate_limit_prefix,
            errors=rate_limit_errors,
        )
        app.state.registry = Downstream("registry", settings.registry_url, **timeouts)
        app.state.calculator = Downstream("calculator", settings.calculator_urls, **timeouts)
        app.state.regions = RegionDirectory(app.state.registry)
        try:
            await _bootstrap_admin(app, settings)
            yield
        finally:
            if revocations is not None:
                await revocations.aclose()
            await app.state.registry.aclose()
            await app.state.calculator.aclose()
            await app.state.rate_limiter.aclose()
            await engine.dispose()

    def checks() -> Mapping[str, Check]:
        async def database() -> None:
            await ping(app.state.engine)

        def downstream(name: str) -> Check:
            # Reported, not counted: a gateway taken out of service for a downstream outage
            # would turn every answer, even the 503 with Retry-After, into a balancer error.
            # Every instance of the service is asked; one that is not ready is named by its
            # place in the list (its URL is the deployment's business).
            # A hanging instance too: answered within the readiness check's own time.
            async def ready(client: DownstreamClient) -> str | None:
                try:
                    async with asyncio.timeout(DOWNSTREAM_READY_SECONDS):
                        response = await client.get("/readyz")
                    response.raise_for_status()
                except Exception as exc:  # any failure is "unavailable"
                    return type(exc).__name__
                return None

            async def check() -> dict[str, str]:
                downstream: Downstream = getattr(app.state, name)
                count = len(downstream.instances)
                # All at once: one that hangs holds the answer for one timeout, not one each.
                errors = await asyncio.gather(*(ready(i.client) for i in downstream.instances))
                failed = [
                    error if count == 1 else f"instance {place} of {count}: {error}"
                    for place, error in enumerate(errors, 1)
                    if error is not None
                ]
                if not failed:
                    return {}
                return {"status": "unavailable", "error": "; ".join(failed)}

            return check

        return {
            "database": database,
            "registry": downstream("registry"),
            "calculator": downstream("calculator"),
        }

    app = service_app(
        title="补贴计算服务 Subsidy API",
        description=DESCRIPTION,
        version="1.0.0",
        settings=settings,
        lifespan=lifespan,
        checks=checks,
        routers=[
            calculations_router,
            claims_router,
            reference_router,
            funds_router,
            policies_router,
            policies_admin_router,
            tenants_router,
            tenant_audit_router,
        ],
        docs=settings.environment != "production",
        streaming_paths=frozenset({"/v1/calculations/batch"}),
        # Every route reads its body by hand once its caller is known (`bodies.checked`): a
        # request without a valid key is answered 401 before its body is waited for.
        bodies_on_demand=True,
        # The gateway is public: its metrics are for an admin's or an auditor's key only.
        metrics_dependencies=[Depends(metrics_reader)],
        openapi_tags=[
            {"name": "reference", "description": "参考数据：行政区划、事项目录"},
            {"name": "calculations", "description": "补贴计算：时间从新、标准从高、不重复"},
            {"name": "claims", "description": "申报与台账：不重复发放"},
            {"name": "policies", "description": "政策文件与条款"},
            {"name": "admin", "description": "管理：政策文件的登记、修订、废止，租户与审计"},
        ],
    )
    app.state.settings = settings
    rate_limit_errors = store_errors_counter(app.state.metrics.registry)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "If-Match",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
        )
    app.add_exception_handler(PassedThrough, _pass_through)
    _declare_problem_schema(app)
    return app


async def _pass_through(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, PassedThrough)
    return relay(exc.response)


async def _bootstrap_admin(app: FastAPI, settings: Settings) -> None:
    if settings.admin_key is None:
        log.warning("SUBSIDY_ADMIN_KEY is not set: no admin key is created on this start")
        return
    made = await tenant_service.ensure_admin_key(
        app.state.sessions, key=settings.admin_key.get_secret_value(), region=settings.admin_region
    )
    if made.replaced_key_ids:
        log.warning(
            "SUBSIDY_ADMIN_KEY was replaced: the previous bootstrap admin keys are revoked",
            extra={"key_id": made.key_id, "revoked_key_ids": made.replaced_key_ids},
        )
    if made.refused is not None:
        log.error(
            f"SUBSIDY_ADMIN_KEY cannot be the admin key: {made.refused}. It replaced nothing: the"
            " admin keys on record still work. `gateway-tenants create --role admin` makes"
            " another admin tenant and key.",
            extra={"key_id": made.key_id},
        )


def _declare_problem_schema(app: FastAPI) -> None:
    """Complete the generated document: Problem, hand-read bodies, particular problems."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        extra = {
            model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}")
            for model in (
                Problem,
                BatchRequest,
                CalculationRequest,
                ClaimRequest,
                RevokeRequest,
                ReviewRequest,
                BudgetRequest,
                PolicyWrite,
                RepealRequest,
                TenantCreate,
                KeyIssue,
            )
        }
        # A batch's cases are calculation requests; the model takes any value, to answer a bad
        # one with a problem in its place.
        extra["BatchRequest"]["properties"]["cases"]["items"] = {
            "$ref": "#/components/schemas/CalculationRequest"
        }
        app.openapi_schema = complete(original(), extra)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
