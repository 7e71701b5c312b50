"""Prometheus metrics: requests counted and timed by route template, served at `/metrics`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, params
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# A label value per method a client may invent would let anyone grow the series without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The collectors of one app, in a registry of its own.

    Each app gets its own `CollectorRegistry`: tests build many apps in one process, and the
    global default registry would refuse the second set of the same metric names.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to the last byte of its response.",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # The series of each (method, route, status), found once: `labels()` takes a lock and
        # builds its key on every call. Bounded as the series themselves are.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        key = (method if method in _METHODS else "other", route, status)
        series = self._series.get(key)
        if series is None:
            labels = (key[0], route, str(status))
            series = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def exposition(self) -> bytes:
        """The current values in the Prometheus text format."""
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    """The path template of the route that served (or would have served) a request.

    The router records its route in the scope; a request answered before routing (a body too
    large, say) is matched against the app's routes here, so it still gets its template.
    """
    route = scope.get("route")
    if route is None:
        app: Any = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def metrics_router(metrics: Metrics, *, dependencies: Sequence[params.Depends] = ()) -> APIRouter:
    """`GET /metrics` for Prometheus, kept out of the OpenAPI document.

    Public unless `dependencies` guard it: the internal services' are reachable only inside
    the deployment, the public gateway's are not.
    """
    router = APIRouter(include_in_schema=False, dependencies=list(dependencies))

    @router.get(METRICS_PATH)
    async def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
