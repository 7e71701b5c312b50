"""The OpenAPI document proves every route is guarded, and documents what clients need."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from gateway.config import Settings
from gateway.main import create_app
from starlette.routing import BaseRoute, Mount

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/openapi.json")}
# Answered without a key, with every method the route serves (HEAD included where it is):
# liveness and readiness for the orchestrator, the document, and outside production the
# Swagger pages, which are static HTML (and its scripts) reading that same public document.
PUBLIC_PATHS = {"/healthz", "/readyz", "/openapi.json"}
DOCS_PATHS = {"/docs", "/docs/oauth2-redirect", "/docs/static"}
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# A value every path parameter of the gateway accepts (a UUID matches the slugs too).
PATH_VALUE = str(uuid.UUID(int=0x0B8F9F7E3C1A4E0E9A576F1F2B9C1D2E))


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
    public = [(m, p) for m, p, operation in ops if operation.get("security") == []]
    assert sorted(public) == [("GET", "/healthz"), ("GET", "/readyz")]
    for method, path, operation in ops:
        if (method, path) in PUBLIC:
            assert operation["security"] == [], f"{method} {path} must say it needs no key"
            assert (await anonymous.request(method, path)).status_code in (200, 503)
            continue
        assert operation.get("security"), f"{method} {path} declares no security"
        response = await anonymous.request(
            method, concrete(path), content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
        assert response.headers["content-type"] == "application/problem+json"


def served(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    """Every (method, path) the app routes, whether the OpenAPI document shows it or not:
    included routers flattened with their prefixes, mounts walked into, path parameters
    filled in. A mounted app with no routes of its own is probed with every method."""
    found: list[tuple[str, str]] = []
    for context in iter_route_contexts(routes):
        route = context._effective_route
        path = prefix + (context.path or "")
        concrete_path = re.sub(r"\{[^}]+\}", PATH_VALUE, path)
        if isinstance(route, Mount) or isinstance(context.original_route, Mount):
            inner = list(getattr(context, "routes", None) or [])
            if inner:
                found += served(inner, path)
            else:
                found += [(m, concrete_path or "/") for m in ALL_METHODS]
            continue
        if not hasattr(context, "methods"):  # a websocket or host route: nothing probes it
            raise AssertionError(f"{type(route).__name__} {path} is of a kind the walk misses")
        methods = context.methods or ALL_METHODS  # a route without methods takes them all
        found += [(method, concrete_path) for method in sorted(methods)]
    return found


@pytest.mark.parametrize("body", [b"{}", b"{"], ids=["well-formed", "malformed"])
async def test_every_route_of_the_app_needs_a_key(
    stack: Any, anonymous: httpx.AsyncClient, body: bytes
) -> None:
    """Walks `app.routes`, not the document: a route left out of the schema (`/metrics`, one
    with `include_in_schema=False`, a mount) is asked too, with each of its methods."""
    app: FastAPI = stack.gateway
    routes = served(app.routes)
    documented = {(m, concrete(p).replace("luzhou-2023-catalogue-notice", PATH_VALUE))
                  for m, p, _ in await operations(anonymous)}  # fmt: skip
    assert documented <= set(routes), "the walk misses routes the document shows"
    assert ("GET", "/metrics") in routes  # hidden from the document, admin or auditor only
    public = {(m, p) for m, p in routes if p in PUBLIC_PATHS | DOCS_PATHS}
    assert {p for _, p in public} == PUBLIC_PATHS | DOCS_PATHS  # docs: not production
    for method, path in public:
        response = await anonymous.request(method, path)
        assert response.status_code != 401, f"public {method} {path} asks for a key"
    guarded = [(m, p) for m, p in routes if (m, p) not in public]
    assert (documented - PUBLIC) | {("GET", "/metrics")} <= set(guarded)
    for method, path in guarded:
        response = await anonymous.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
        assert response.headers["content-type"] == "application/problem+json", (method, path)


async def test_the_docs_page_needs_nothing_from_outside(anonymous: httpx.AsyncClient) -> None:
    """A county's network may reach the gateway and nothing else: the page loads its scripts,
    styles and icon from the gateway itself."""
    page = await anonymous.get("/docs")
    assert page.status_code == 200
    linked = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert len(linked) >= 3
    assert not [url for url in linked if "//" in url], "the page loads from elsewhere"
    for url in linked:
        asset = await anonymous.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    assert "/openapi.json" in page.text


def test_production_serves_no_docs_pages() -> None:
    """In production the only routes without a key are health, readiness and the document."""
    app = create_app(Settings(environment="production"))
    paths = {path for _, path in served(app.routes)}
    assert not paths & DOCS_PATHS
    assert paths >= PUBLIC_PATHS


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
            if operation.get("security") == []:  # health and readiness: no key, no body
                continue
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
    claims = paths["/v1/claims"]["post"]["responses"]
    assert "Location" in claims["201"]["headers"]
    assert "Retry-After" in claims["409"]["headers"]
    assert "Location" in paths["/v1/admin/policies"]["post"]["responses"]["201"]["headers"]
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
