"""A downstream that hangs: the gateway answers 504 within its timeout, never hangs itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from gateway.config import Settings
from gateway.main import create_app
from pydantic import SecretStr
from starlette.responses import Response
from testkit import live_server, never_answering, running

KEY = "sk_slow-downstream-admin-key-000000000000000"
TIMEOUT = 0.5  # the gateway's downstream_timeout in these tests


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


@pytest.mark.parametrize("path", ["/v1/claims", "/v1/calculations"])
async def test_a_calculator_that_never_answers_is_504_within_the_timeout(
    path: str,
    stack: Any,
    another_gateway: Callable[..., Any],
    client_for: Callable[..., httpx.AsyncClient],
    case: Callable[..., dict[str, Any]],
) -> None:
    """The calculator takes the connection and the request, then says nothing: the gateway
    gives up after its configured timeout and says so, rather than hold its caller."""
    calculation = case()
    body = calculation
    if path == "/v1/claims":
        body = {"applicant": calculation["applicant"], "event": calculation["events"][0]}
    async with (
        never_answering() as calculator,
        another_gateway(
            database_url=stack.gateway.state.settings.database_url,
            calculator_url=calculator.url,
            downstream_timeout=TIMEOUT,
        ) as app,
        client_for(app) as client,
    ):
        started = time.monotonic()
        async with asyncio.timeout(TIMEOUT + 5):  # a gateway that hangs fails here
            response = await client.post(
                path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
        elapsed = time.monotonic() - started
        assert calculator.connections >= 1  # the request reached it: a hang, not a refusal
    assert response.status_code == 504, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 504
    assert TIMEOUT - 0.05 <= elapsed < TIMEOUT + 1.0, elapsed
