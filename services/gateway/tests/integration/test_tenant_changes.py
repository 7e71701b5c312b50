"""The record of changes to tenants and keys: who made each, when, and what it did."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from gateway.auth.keys import new_key
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from testkit.gateway import admin_tenant_id, new_tenant

GatewayFactory = Callable[..., Any]
ClientFactory = Callable[..., httpx.AsyncClient]


async def changes_of(client: httpx.AsyncClient, tenant_id: str, **params: Any) -> Any:
    response = await client.get(
        "/v1/admin/audit/tenants", params={"tenant_id": tenant_id, **params}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_every_change_is_recorded_with_who_made_it(admin: httpx.AsyncClient) -> None:
    tenant = await new_tenant(admin)
    keys = f"/v1/admin/tenants/{tenant['id']}/keys"
    second = (await admin.post(keys)).json()
    rotated = (await admin.post(keys, json={"revoke_others": True})).json()
    assert (await admin.post(f"{keys}/{rotated['id']}/revoke")).status_code == 200
    assert (await admin.post(f"/v1/admin/tenants/{tenant['id']}/disable")).status_code == 200

    items = (await changes_of(admin, tenant["id"]))["items"]
    assert [c["action"] for c in items] == [
        "disable",
        "revoke_key",
        "issue_key",
        "issue_key",
        "create",
    ]
    assert [c["key_id"] for c in items] == [
        None,
        rotated["id"],
        rotated["id"],
        second["id"],
        items[-1]["key_id"],
    ]
    assert sorted(items[2]["revoked_key_ids"]) == sorted(rotated["revoked_key_ids"])
    assert second["id"] in items[2]["revoked_key_ids"]
    assert all(c["revoked_key_ids"] == [] for i, c in enumerate(items) if i != 2)
    admin_id = await admin_tenant_id(admin)
    assert {c["actor"] for c in items} == {f"admin [{admin_id}]"}
    assert all(c["tenant_id"] == tenant["id"] for c in items)
    assert [c["at"] for c in items] == sorted((c["at"] for c in items), reverse=True)


async def test_a_change_that_changes_nothing_is_not_recorded(admin: httpx.AsyncClient) -> None:
    tenant = await new_tenant(admin)
    key_id = (await changes_of(admin, tenant["id"]))["items"][0]["key_id"]
    for _ in range(2):
        await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys/{key_id}/revoke")
        await admin.post(f"/v1/admin/tenants/{tenant['id']}/disable")
    actions = [c["action"] for c in (await changes_of(admin, tenant["id"]))["items"]]
    assert actions == ["disable", "revoke_key", "create"]


async def test_a_refused_change_is_not_recorded(admin: httpx.AsyncClient) -> None:
    tenant = await new_tenant(admin)
    await admin.post(f"/v1/admin/tenants/{tenant['id']}/disable")
    assert (await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys")).status_code == 409
    actions = [c["action"] for c in (await changes_of(admin, tenant["id"]))["items"]]
    assert actions == ["disable", "create"]


async def test_pages_follow_one_another(admin: httpx.AsyncClient) -> None:
    tenant = await new_tenant(admin)
    for _ in range(3):
        await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys")
    whole = (await changes_of(admin, tenant["id"]))["items"]
    seen: list[Any] = []
    cursor = None
    while True:
        page = await changes_of(
            admin, tenant["id"], limit=3, **({"cursor": cursor} if cursor else {})
        )
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == whole
    assert len(seen) == 4


@pytest.mark.parametrize("cursor", ["x", "-1", "99999999999999999999", "2147483648", "0"])
async def test_a_cursor_no_page_gave_is_refused(admin: httpx.AsyncClient, cursor: str) -> None:
    response = await admin.get("/v1/admin/audit/tenants", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_a_cursor_of_another_tenants_changes_is_refused(admin: httpx.AsyncClient) -> None:
    one, other = await new_tenant(admin), await new_tenant(admin)
    cursor = str((await changes_of(admin, one["id"]))["items"][0]["id"])
    response = await admin.get(
        "/v1/admin/audit/tenants", params={"tenant_id": other["id"], "cursor": cursor}
    )
    assert response.status_code == 422


async def test_auditors_read_it_and_operators_do_not(
    admin: httpx.AsyncClient, as_key: Callable[[str], httpx.AsyncClient]
) -> None:
    auditor = await new_tenant(admin, "auditor")
    operator = await new_tenant(admin, "operator")
    async with as_key(auditor["api_key"]) as client:
        assert (await client.get("/v1/admin/audit/tenants")).status_code == 200
    async with as_key(operator["api_key"]) as client:
        response = await client.get("/v1/admin/audit/tenants")
    assert response.status_code == 403


async def test_the_record_cannot_be_altered(stack: Any, admin: httpx.AsyncClient) -> None:
    tenant = await new_tenant(admin)
    for statement in (
        "UPDATE tenant_change SET actor = 'someone else' WHERE tenant_id = :t",
        "DELETE FROM tenant_change WHERE tenant_id = :t",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with stack.gateway.state.engine.begin() as connection:
                await connection.execute(text(statement), {"t": tenant["id"]})
    assert len((await changes_of(admin, tenant["id"]))["items"]) == 1


async def test_a_start_that_sets_the_admin_key_is_recorded_once(
    admin_key: str,
    another_gateway: GatewayFactory,
    client_for: ClientFactory,
    database_factory: Callable[[str], Awaitable[str]],
) -> None:
    database = await database_factory("gateway_changes")
    replacement = new_key()
    for key in (admin_key, admin_key, replacement, replacement):
        async with another_gateway(database_url=database, admin_key=SecretStr(key)):
            pass
    restarted = another_gateway(database_url=database, admin_key=SecretStr(replacement))
    async with restarted as app, client_for(app, replacement) as admin:
        items = (await admin.get("/v1/admin/audit/tenants")).json()["items"]
    assert [(c["action"], c["actor"]) for c in items] == [("bootstrap", "SUBSIDY_ADMIN_KEY")] * 2
    first, replaced = items[1], items[0]
    assert replaced["revoked_key_ids"] == [first["key_id"]]
    assert first["revoked_key_ids"] == []
