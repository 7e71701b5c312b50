"""What gateway tests ask of a gateway: whether a key is let in, the admin tenant's id, a new
tenant."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI


async def status_with(client_for: Callable[..., httpx.AsyncClient], app: FastAPI, key: str) -> int:
    """The status a request with this key is answered with."""
    async with client_for(app, key) as client:
        return (await client.get("/v1/matters")).status_code


async def admin_tenant_id(admin: httpx.AsyncClient) -> str:
    """The id of the tenant SUBSIDY_ADMIN_KEY belongs to."""
    tenants = (await admin.get("/v1/admin/tenants", params={"limit": 500})).json()["items"]
    (tenant,) = [t for t in tenants if t["name"] == "admin"]
    tenant_id: str = tenant["id"]
    return tenant_id


async def new_tenant(
    admin: httpx.AsyncClient, role: str = "operator", region: str = "510502"
) -> dict[str, Any]:
    """A new tenant of a name of its own, with its first key (`api_key`)."""
    response = await admin.post(
        "/v1/admin/tenants",
        json={"name": f"{role}-{uuid.uuid4().hex[:8]}", "role": role, "region": region},
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made
