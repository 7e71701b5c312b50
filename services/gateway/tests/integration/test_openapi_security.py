"""The OpenAPI document proves every route is guarded, and documents what clients need."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/openapi.json")}


async def operations(client: httpx.AsyncClient) -> list[tuple[str, str, dict[str, Any]]]:
    document = (await client.get("/openapi.json")).json()
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "luzhou-2023-catalogue-notice", path)


@pytest.mark.parametrize("body", [b"{}", b"{"], ids=["well-formed", "malformed"])
async def test_every_operation_needs_a_key(anonymous: httpx.AsyncClient, body: bytes) -> None:
    """The key is asked for first: a body is not read, nor its faults named, for a stranger."""
    ops = await operations(anonymous)
    assert len(ops) >= 10
    for method, path, operation in ops:
        assert (method, path) not in PUBLIC
        assert operation.get("security"), f"{method} {path} declares no security"
        response = await anonymous.request(
            method, concrete(path), content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("body", [b"{}", b"{"], ids=["well-formed", "malformed"])
@pytest.mark.parametrize("role", ["operator", "auditor"])
async def test_admin_writes_refuse_other_roles(
    role: str, body: bytes, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
) -> None:
    key = (
        await admin.post(
            "/v1/admin/tenants",
            json={"name": f"r-{uuid.uuid4().hex[:8]}", "role": role, "region": "510502"},
        )
    ).json()["api_key"]
    ops = await operations(admin)
    admin_ops = [(m, p) for m, p, _ in ops if p.startswith("/v1/admin/")]
    assert admin_ops
    async with as_key(key) as client:
        for method, path in admin_ops:
            response = await client.request(
                method, concrete(path), content=body, headers={"Content-Type": "application/json"}
            )
            if method == "GET" and role == "auditor":  # an auditor reads everything
                assert response.status_code != 403, f"{role} {method} {path}"
                continue
            assert response.status_code == 403, f"{role} {method} {path}: {response.status_code}"


async def test_document_is_openapi_31_with_examples_and_problems(
    anonymous: httpx.AsyncClient,
) -> None:
    document = (await anonymous.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["description"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    assert "Problem" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            assert operation.get("tags"), f"{method} {path} has no tag"
            statuses = ["401", "422", "502"] + (["415"] if "requestBody" in operation else [])
            for status in statuses:
                content = operation["responses"][status]["content"]
                assert "application/problem+json" in content, f"{method} {path} {status}"


async def test_the_document_describes_the_headers_clients_read(
    anonymous: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    paths = (await anonymous.get("/openapi.json")).json()["paths"]
    regions = paths["/v1/regions"]["get"]["responses"]
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        regions["200"]["headers"]
    )
    assert "Retry-After" in regions["429"]["headers"]
    assert "Retry-After" in regions["503"]["headers"]
    assert "ETag" in paths["/v1/policies/{document_id}"]["get"]["responses"]["200"]["headers"]
    # and the answers carry them
    answer = await admin.get("/v1/regions")
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(answer.headers)
    policy = await admin.get("/v1/policies/luzhou-2015-33")
    assert policy.headers["etag"]


async def test_every_operation_has_an_example(anonymous: httpx.AsyncClient) -> None:
    document = (await anonymous.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def has_example(schema: dict[str, Any]) -> bool:
        if "anyOf" in schema:
            return any(
                has_example(branch) for branch in schema["anyOf"] if branch != {"type": "null"}
            )
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return bool(schema.get("examples") or schema.get("example"))

    missing = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and not (body.get("example") or has_example(body["schema"])):
                missing.append(f"{method} {path} request")
            ok = next(r for s, r in operation["responses"].items() if s.startswith("2"))
            answer = ok.get("content", {}).get("application/json")
            if answer is not None and not (answer.get("example") or has_example(answer["schema"])):
                missing.append(f"{method} {path} response")
    assert missing == []
