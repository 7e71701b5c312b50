"""A downstream that hangs: the gateway answers 504 within its timeout, never hangs itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI
from gateway.config import Settings
from gateway.main import create_app
from pydantic import SecretStr
from starlette.responses import Response
from testkit import live_server, running

KEY = "sk_slow-downstream-admin-key-000000000000000"


def hanging() -> FastAPI:
    app = FastAPI()

    @app.get("/{path:path}")
    async def hang(path: str) -> Response:
        await asyncio.sleep(3)  # well past the 0.5 s timeout
        return Response(b"{}")

    return app


async def test_hanging_registry_is_504_within_the_timeout(
    database_factory: Callable[[str], Awaitable[str]],
) -> None:
    async with live_server(hanging()) as slow:
        gateway = create_app(
            Settings(
                database_url=await database_factory("gateway"),
                registry_url=slow,
                calculator_url=slow,
                admin_key=SecretStr(KEY),
                downstream_timeout=0.5,
            )
        )
        async with running(gateway):
            transport = httpx.ASGITransport(app=gateway)
            headers = {"Authorization": f"Bearer {KEY}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://g", headers=headers
            ) as client:
                started = time.monotonic()
                response = await client.get("/v1/policies")
                elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert elapsed < 5
