"""Keys, roles and tenants through the gateway, with the registry behind it over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from gateway.tenants import service as tenant_service
from testkit.gateway import new_tenant


class TestAuthentication:
    async def test_no_key_is_401_problem(self, anonymous: httpx.AsyncClient) -> None:
        response = await anonymous.get("/v1/regions")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_unknown_key_is_401(self, as_key: Callable[[str], httpx.AsyncClient]) -> None:
        async with as_key("sk_nobody-issued-this") as client:
            assert (await client.get("/v1/regions")).status_code == 401

    async def test_a_method_not_served_is_405_naming_those_that_are(
        self, admin: httpx.AsyncClient
    ) -> None:
        response = await admin.delete("/v1/regions")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"
        assert response.headers["content-type"] == "application/problem+json"

    async def test_wrong_scheme_is_401(self, anonymous: httpx.AsyncClient) -> None:
        response = await anonymous.get("/v1/regions", headers={"Authorization": "Basic abc"})
        assert response.status_code == 401

    @pytest.mark.parametrize("valid_first", [True, False])
    async def test_two_authorization_headers_are_400(
        self, anonymous: httpx.AsyncClient, admin_key: str, valid_first: bool
    ) -> None:
        """The first had spoken: a valid key before a made-up one was let in, after it not."""
        keys = [f"Bearer {admin_key}", "Bearer sk_nobody-issued-this"]
        headers = httpx.Headers([("Authorization", k) for k in keys[:: 1 if valid_first else -1]])
        response = await anonymous.get("/v1/regions", headers=headers)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/ambiguous-credentials")

    async def test_health_needs_no_key(self, anonymous: httpx.AsyncClient) -> None:
        assert (await anonymous.get("/healthz")).status_code == 200
        ready = await anonymous.get("/readyz")
        assert ready.status_code == 200
        assert set(ready.json()["checks"]) == {"database", "registry", "calculator"}


class TestRegionsThroughTheGateway:
    async def test_admin_lists_regions_from_the_registry(self, admin: httpx.AsyncClient) -> None:
        response = await admin.get("/v1/regions", headers={"X-Request-ID": "trace-me-1"})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "trace-me-1"
        codes = {r["code"] for r in response.json()["items"]}
        assert {"510000", "510500", "510502", "510500-GX", "530402", "620000"} <= codes

    async def test_matters_and_regions_come_a_page_at_a_time(
        self, admin: httpx.AsyncClient
    ) -> None:
        first = (await admin.get("/v1/matters", params={"limit": 3})).json()
        second = (
            await admin.get("/v1/matters", params={"limit": 3, "cursor": first["next_cursor"]})
        ).json()
        assert (len(first["items"]), len(second["items"])) == (3, 3)
        assert first["next_cursor"] == first["items"][-1]["key"]
        assert {m["key"] for m in first["items"]}.isdisjoint(m["key"] for m in second["items"])
        assert (await admin.get("/v1/regions", params={"limit": 501})).status_code == 422

    async def test_operator_lists_regions(
        self, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        tenant = await new_tenant(admin)
        async with as_key(tenant["api_key"]) as client:
            assert (await client.get("/v1/regions")).status_code == 200


class TestCreateTenant:
    async def test_one_name_created_at_once_is_one_tenant(self, admin: httpx.AsyncClient) -> None:
        body = {"name": f"same-{uuid.uuid4().hex[:8]}", "role": "operator", "region": "510502"}
        responses = await asyncio.gather(
            *(admin.post("/v1/admin/tenants", json=body) for _ in range(8))
        )
        assert sorted(r.status_code for r in responses) == [201] + [409] * 7
        assert all(r.json()["status"] == 409 for r in responses if r.status_code != 201)

    async def test_key_is_shown_once_and_works(
        self, admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
    ) -> None:
        tenant = await new_tenant(admin, role="auditor", region="510500")
        assert tenant["api_key"].startswith("sk_")
        assert len(tenant["api_key"]) > 40
        listed = (await admin.get("/v1/admin/tenants", params={"limit": 500})).json()["items"]
        assert any(t["id"] == tenant["id"] for t in listed)
        assert all("api_key" not in t for t in listed)
        async with as_key(tenant["api_key"]) as client:
            assert (await client.get("/v1/matters")).status_code == 200

    async def test_key_is_stored_hashed(self, admin: httpx.AsyncClient, stack: object) -> None:
        from sqlalchemy import text

        tenant = await new_tenant(admin)
        engine = stack.gateway.state.engine  # type: ignore[attr-defined]
        async with engine.connect() as connection:
            stored = (await connection.execute(text("SELECT key_hash, prefix FROM api_key"))).all()
        assert all(tenant["api_key"] not in (row.key_hash + row.prefix) for row in stored)
        assert all(len(row.key_hash) == 64 for row in stored)

    async def test_unknown_region_is_422_naming_the_field(self, admin: httpx.AsyncClient) -> None:
        response = await admin.post(
            "/v1/admin/tenants", json={"name": "某县", "role": "operator", "region": "519999"}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "region"]

    async def test_extra_fields_are_refused(self, admin: httpx.AsyncClient) -> None:
        response = await admin.post(
            "/v1/admin/tenants",
            json={"name": "某县系统", "role": "operator", "region": "510502", "api_key": "mine"},
        )
        assert response.status_code == 422

    @pytest.mark.parametrize("mark", ["\n", "\u202e", "\u200b", "\x7f"])
    async def test_a_name_with_control_or_format_characters_is_422(
        self, admin: httpx.AsyncClient, mark: str
    ) -> None:
        """A line break or a direction mark would make the name read otherwise in lists and logs."""
        response = await admin.post(
            "/v1/admin/tenants",
            json={"name": f"江阳区{mark}科技局", "role": "operator", "region": "510502"},
        )
        assert response.status_code == 422
        (error,) = response.json()["errors"]
        assert error["loc"] == ["body", "name"]
        assert f"U+{ord(mark):04X} at character 4" in error["msg"]

    async def test_duplicate_name_is_409(self, admin: httpx.AsyncClient) -> None:
        body = {"name": f"dup-{uuid.uuid4().hex[:6]}", "role": "operator", "region": "510502"}
        assert (await admin.post("/v1/admin/tenants", json=body)).status_code == 201
        assert (await admin.post("/v1/admin/tenants", json=body)).status_code == 409

    @pytest.mark.parametrize(("role", "reads"), [("operator", 403), ("auditor", 200)])
    async def test_only_an_admin_changes_and_an_auditor_reads(
        self,
        role: str,
        reads: int,
        admin: httpx.AsyncClient,
        as_key: Callable[[str], httpx.AsyncClient],
    ) -> None:
        tenant = await new_tenant(admin, role=role)
        async with as_key(tenant["api_key"]) as client:
            created = await client.post(
                "/v1/admin/tenants", json={"name": "x-y-z", "role": "admin", "region": "510500"}
            )
            listed = await client.get("/v1/admin/tenants")
            keys = await client.get(f"/v1/admin/tenants/{tenant['id']}/keys")
            issued = await client.post(f"/v1/admin/tenants/{tenant['id']}/keys", json={})
        assert created.status_code == 403
        assert issued.status_code == 403
        assert (listed.status_code, keys.status_code) == (reads, reads)
        if reads == 200:
            assert all("api_key" not in t for t in listed.json()["items"])

    async def test_list_pages_with_a_cursor(self, admin: httpx.AsyncClient) -> None:
        for _ in range(3):
            await new_tenant(admin)
        first = (await admin.get("/v1/admin/tenants", params={"limit": 2})).json()
        assert len(first["items"]) == 2
        assert first["next_cursor"]
        second = (
            await admin.get(
                "/v1/admin/tenants", params={"limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        assert {t["id"] for t in first["items"]}.isdisjoint({t["id"] for t in second["items"]})

    @pytest.mark.parametrize("cursor", ["zzzz", "00000000-0000-0000-0000-000000000000", ""])
    async def test_a_cursor_no_page_gave_is_422(
        self, cursor: str, admin: httpx.AsyncClient
    ) -> None:
        """It answered an empty page, or the whole list from the start."""
        tenant_id = (await new_tenant(admin))["id"]
        for path in ("/v1/admin/tenants", f"/v1/admin/tenants/{tenant_id}/keys"):
            response = await admin.get(path, params={"cursor": cursor})
            assert response.status_code == 422, (path, response.text)
            assert response.json()["errors"][0]["loc"] == ["query", "cursor"]

    async def test_limit_above_the_cap_is_422(self, admin: httpx.AsyncClient) -> None:
        assert (await admin.get("/v1/admin/tenants", params={"limit": 501})).status_code == 422


class TestDownstreamFailures:
    async def test_registry_down_is_503_problem(
        self, stack: object, admin: httpx.AsyncClient
    ) -> None:
        from gateway.clients.downstream import Downstream

        gateway = stack.gateway  # type: ignore[attr-defined]
        original = gateway.state.registry
        gateway.state.registry = Downstream(
            "registry", "http://127.0.0.1:9", timeout=1, connect_timeout=0.5
        )
        try:
            response = await admin.get("/v1/regions")
        finally:
            await gateway.state.registry.aclose()
            gateway.state.registry = original
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"]


async def test_replicas_making_sure_of_the_admin_key_at_once_make_one(
    another_gateway: Callable[..., Any],
    database_factory: Callable[[str], Awaitable[str]],
    client_for: Callable[..., httpx.AsyncClient],
) -> None:
    """Replicas of a first deployment each make sure the admin key exists; one writes it."""
    key = "sk_replicas-admin-key-0123456789abcdef0123456789"
    url = await database_factory("gateway_replicas")
    async with another_gateway(database_url=url, admin_key=None) as app:
        await asyncio.gather(
            *(
                tenant_service.ensure_admin_key(app.state.sessions, key=key, region="510500")
                for _ in range(6)
            )
        )
        async with client_for(app, key) as admin:
            tenants = (await admin.get("/v1/admin/tenants")).json()["items"]
    assert [t["name"] for t in tenants] == ["admin"]
