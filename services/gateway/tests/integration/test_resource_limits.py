"""Resource limits at the gateway: body size (413), page size (422), and no body waited for
from a caller without a valid key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.types import Message
from testkit.gateway import new_tenant

NINE_MB = 9 * 1024 * 1024


def oversized_claim() -> bytes:
    """A syntactically valid claim whose applicant name alone is 9 MB."""
    return (
        b'{"applicant": {"id": "91510500MA62B8XY4F", "kind": "enterprise", "region": "510502",'
        b' "name": "' + b"x" * NINE_MB + b'"}, "event": {"matter": "m", "date": "2024-01-01",'
        b' "subject": "s"}}'
    )


class TestBodySize:
    @pytest.mark.parametrize("path", ["/v1/claims", "/v1/calculations", "/v1/admin/tenants"])
    async def test_a_9_mb_body_is_413_problem(self, path: str, admin: httpx.AsyncClient) -> None:
        response = await admin.post(
            path,
            content=oversized_claim(),
            headers={"Content-Type": "application/json", "Idempotency-Key": "big-1"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 413

    async def test_a_9_mb_body_without_content_length_is_413_too(
        self, admin: httpx.AsyncClient
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(9):
                yield b" " * (1024 * 1024)

        response = await admin.post(
            "/v1/claims",
            content=chunks(),
            headers={"Content-Type": "application/json", "Idempotency-Key": "big-2"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"


class TestPageSize:
    @pytest.mark.parametrize("path", ["/v1/policies", "/v1/claims"])
    async def test_limit_501_is_422_naming_the_parameter(
        self, path: str, admin: httpx.AsyncClient
    ) -> None:
        response = await admin.get(path, params={"limit": 501})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert ["query", "limit"] in [e["loc"] for e in response.json()["errors"]]

    @pytest.mark.parametrize("path", ["/v1/policies", "/v1/claims"])
    async def test_limit_500_is_accepted(self, path: str, admin: httpx.AsyncClient) -> None:
        assert (await admin.get(path, params={"limit": 500})).status_code == 200


class TestKeyBeforeBody:
    """A caller without a valid key is answered before its body is waited for: a client that
    sends a byte now and then cannot hold a gateway connection, nor make it buffer a body,
    without a key."""

    @staticmethod
    async def answer(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> Message:
        """The answer's start, for a POST whose body never comes."""
        sent: list[Message] = []
        never = asyncio.Event()

        async def receive() -> Message:
            await never.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"gateway"),
                (b"content-type", b"application/json"),
                (b"content-length", b"100000"),
                *headers,
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("gateway", 80),
        }
        await asyncio.wait_for(app(scope, receive, send), 5)
        return sent[0]

    @pytest.mark.parametrize(
        "path", ["/v1/claims", "/v1/calculations", "/v1/calculations/batch", "/v1/admin/tenants"]
    )
    @pytest.mark.parametrize("key", [None, "sk_" + "n0tIssued" * 5])
    async def test_no_valid_key_is_401_without_the_body(
        self, stack: Any, path: str, key: str | None
    ) -> None:
        headers = [] if key is None else [(b"authorization", f"Bearer {key}".encode())]
        start = await self.answer(stack.gateway, path, headers)
        assert start["status"] == 401

    async def test_an_operator_on_an_admin_route_is_403_without_the_body(
        self, stack: Any, admin: httpx.AsyncClient
    ) -> None:
        key = (await new_tenant(admin))["api_key"]
        start = await self.answer(
            stack.gateway, "/v1/admin/policies", [(b"authorization", f"Bearer {key}".encode())]
        )
        assert start["status"] == 403

    def test_no_route_reads_its_body_before_its_caller_is_known(self, stack: Any) -> None:
        """FastAPI reads a declared body parameter before it resolves the route's dependencies,
        and the gateway's input guard reads a body only when a route asks for it."""
        declared = [
            route.path
            for route in stack.gateway.routes
            if isinstance(route, APIRoute) and route.body_field is not None
        ]
        assert declared == []
