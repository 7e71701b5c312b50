"""`/healthz` (the process answers) and `/readyz` (its dependencies answer), the same everywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

Check = Callable[[], Awaitable[Mapping[str, Any] | None]]
# An operation anyone may call: the orchestrator asks without a key.
NO_KEY: dict[str, Any] = {"security": []}


class Alive(BaseModel):
    """The process answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class CheckResult(BaseModel):
    """One dependency as the readiness check found it."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "unavailable"] = Field(description="该依赖是否可用")
    ms: float = Field(description="检查用时（毫秒）")
    error: str | None = Field(default=None, description="不可用时的原因")


class Readiness(BaseModel):
    """Whether every dependency answers; each is listed with what its check found."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "not_ready",
                    "checks": {
                        "database": {"status": "ok", "ms": 0.8},
                        "registry": {"status": "unavailable", "error": "ConnectError", "ms": 2.1},
                    },
                }
            ]
        }
    )

    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckResult]


def health_router(checks: Callable[[], Mapping[str, Check]], *, timeout: float = 2.0) -> APIRouter:
    """Routes for liveness and readiness; a check raises to say its dependency is not ready.
    Neither needs a key."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        summary="存活检查",
        openapi_extra=NO_KEY,
        responses={200: {"model": Alive, "description": "进程在运行"}},
    )
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def one(check: Check) -> tuple[bool, dict[str, Any]]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                detail = await check()
            ok, result = True, {"status": "ok", **(detail or {})}
        except Exception as exc:  # any failure means "not ready"
            ok, result = False, {"status": "unavailable", "error": type(exc).__name__}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        return ok, result

    @router.get(
        "/readyz",
        summary="就绪检查",
        openapi_extra=NO_KEY,
        responses={
            200: {"model": Readiness, "description": "各依赖均可用"},
            503: {
                "model": Readiness,
                "description": "有依赖不可用（Retry-After 指明稍后再试）",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            },
        },
    )
    async def readyz() -> Response:
        # All at once: dependencies that hang hold the answer for one timeout, not one each,
        # well within an orchestrator's probe.
        named = checks()
        found = await asyncio.gather(*(one(check) for check in named.values()))
        ready = all(ok for ok, _ in found)
        results = {name: result for name, (_, result) in zip(named, found, strict=True)}
        body = {"status": "ready" if ready else "not_ready", "checks": results}
        return Response(
            orjson.dumps(body),
            status_code=200 if ready else 503,
            media_type="application/json",
            headers=None if ready else {"Retry-After": "1"},
        )

    return router
