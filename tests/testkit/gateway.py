"""What gateway tests ask of a gateway: whether a key is let in, and the admin tenant's id."""

from __future__ import annotations

from collections.abc import Callable

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
