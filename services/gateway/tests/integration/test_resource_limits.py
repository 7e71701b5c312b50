"""Resource limits at the gateway: body size (413) and page size (422)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

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
