"""`/healthz` (the process answers) and `/readyz` (its dependencies answer), the same everywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.responses import Response

Check = Callable[[], Awaitable[Mapping[str, Any] | None]]


def health_router(checks: Callable[[], Mapping[str, Check]], *, timeout: float = 2.0) -> APIRouter:
    """Routes for liveness and readiness; a check raises to say its dependency is not ready."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @router.get("/readyz")
    async def readyz() -> Response:
        results: dict[str, Any] = {}
        ready = True
        for name, check in checks().items():
            started = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    detail = await check()
                results[name] = {"status": "ok", **(detail or {})}
            except Exception as exc:  # any failure means "not ready"
                ready = False
                results[name] = {"status": "unavailable", "error": type(exc).__name__}
            results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
        body = {"status": "ready" if ready else "not_ready", "checks": results}
        return Response(
            orjson.dumps(body),
            status_code=200 if ready else 503,
            media_type="application/json",
            headers=None if ready else {"Retry-After": "1"},
        )

    return router
