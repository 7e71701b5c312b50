"""The shape every service shares: problem handlers, request context, health and metrics."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, params
from fastapi_offline import FastAPIOffline

from subsidy_common.health import Check, health_router
from subsidy_common.metrics import Metrics, metrics_router
from subsidy_common.middleware import InputGuardMiddleware, RequestContextMiddleware
from subsidy_common.problems import install_problem_handlers
from subsidy_common.settings import ServiceSettings

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/internal/v1/snapshot"})

# The cyclic garbage collector's thresholds for a serving process. CPython's default starts a
# young collection after 700 more allocations than deallocations: less than 64 requests in
# flight hold at once, so under load it ran every few requests and walked the live state of
# every request in flight each time, a tenth of a service's CPU (bench/RESULTS.md, fifth
# series). At 20,000 it runs when garbage accumulates, not when requests come and go.
COLLECTOR_THRESHOLDS = (20_000, 10, 10)


def settle_heap() -> None:
    """Put what the process keeps for its lifetime out of the collector's reach: collect once,
    then freeze every survivor (modules, the app, compiled rules).

    A full collection walks every tracked object: about 140,000 in the calculator, 46 ms during
    which no request moves, which made the tail of the latency under load (bench/RESULTS.md,
    seventh series). Frozen objects are never walked, nor collected: call this again after
    replacing a long-lived structure, so that the old one's cycles are freed first.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _settled(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def settled(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app):
            settle_heap()
            yield

    return settled


def service_app(
    *,
    title: str,
    description: str,
    version: str,
    settings: ServiceSettings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    checks: Callable[[], Mapping[str, Check]],
    routers: Sequence[APIRouter] = (),
    docs: bool = True,
    streaming_paths: frozenset[str] = frozenset(),
    bodies_on_demand: bool = False,
    metrics_dependencies: Sequence[params.Depends] = (),
    **kwargs: Any,
) -> FastAPI:
    """A FastAPI app with the conventions of all three services already in place.

    `routers` are the service's own, busiest first: a request is matched against every route
    in order until one fits, so they come before the health and metrics routes.
    `metrics_dependencies` guard `/metrics` (a service reachable from outside needs them).
    `bodies_on_demand`: the input guard reads a body when a route asks for it, not before the
    route runs (see `InputGuardMiddleware`); only for an app none of whose routes declares a
    body parameter.

    Building it also sets this process's garbage collector thresholds for serving, and the heap
    is settled once the service has started (`settle_heap`).
    """
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    options: dict[str, Any] = {
        "title": title,
        "description": description,
        "version": version,
        "lifespan": _settled(lifespan),
        "redoc_url": None,
        "openapi_url": "/openapi.json",
        # Our metrics and logs are our own (Prometheus, JSON lines). FastAPI's OpenTelemetry
        # bridge would otherwise ask on every request whether some provider was configured.
        "telemetry": {"tracing": False, "metrics": False, "logs": False},
        **kwargs,
    }
    # The documentation page's scripts are served with it: a county's network may not reach a
    # CDN, and the page would stay blank.
    app = (
        FastAPIOffline(docs_url="/docs", static_url="/docs/static", **options)
        if docs
        else FastAPI(docs_url=None, **options)
    )
    install_problem_handlers(app)
    documentation = list(app.router.routes)  # FastAPI's: the OpenAPI document, the docs pages
    for router in routers:
        app.include_router(router)
    app.include_router(health_router(checks))
    metrics = Metrics()
    app.state.metrics = metrics
    app.include_router(metrics_router(metrics, dependencies=metrics_dependencies))
    # FastAPI puts its own routes first; they are asked for rarely, so they go last.
    app.router.routes[:] = [r for r in app.router.routes if r not in documentation] + documentation
    app.add_middleware(
        InputGuardMiddleware,
        max_bytes=settings.max_body_bytes,
        streaming_paths=streaming_paths,
        on_demand=bodies_on_demand,
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics, quiet_paths=QUIET_PATHS)
    return app
