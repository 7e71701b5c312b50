"""API keys: issued, rotated, listed and revoked; tenants disabled; the last admin key kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from testkit.gateway import admin_tenant_id, new_tenant, status_with

UNKNOWN = "00000000-0000-4000-8000-000000000000"


class TestIssueKey:
    async def test_new_key_works_beside_the_old_one(
        self,
        stack: Any,
        admin: httpx.AsyncClient,
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        tenant = await new_tenant(admin)
        response = await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys")
        assert response.status_code == 201
        issued = response.json()
        assert issued["api_key"].startswith("sk_")
        assert issued["api_key"] != tenant["api_key"]
        assert issued["prefix"] == issued["api_key"][: len(issued["prefix"])]
        assert issued["tenant_id"] == tenant["id"]
        assert issued["revoked_key_ids"] == []
        assert await status_with(client_for, stack.gateway, issued["api_key"]) == 200
        assert await status_with(client_for, stack.gateway, tenant["api_key"]) == 200

    async def test_rotation_revokes_the_others_at_once(
        self,
        stack: Any,
        admin: httpx.AsyncClient,
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        tenant = await new_tenant(admin)
        second = (await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys")).json()
        response = await admin.post(
            f"/v1/admin/tenants/{tenant['id']}/keys", json={"revoke_others": True}
        )
        assert response.status_code == 201
        rotated = response.json()
        assert len(rotated["revoked_key_ids"]) == 2
        assert second["id"] in rotated["revoked_key_ids"]
        assert await status_with(client_for, stack.gateway, rotated["api_key"]) == 200
        assert await status_with(client_for, stack.gateway, tenant["api_key"]) == 401
        assert await status_with(client_for, stack.gateway, second["api_key"]) == 401

    async def test_rotations_made_at_once_leave_one_key(
        self,
        stack: Any,
        admin: httpx.AsyncClient,
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        tenant = await new_tenant(admin)
        rotations = await asyncio.gather(
            *(
                admin.post(f"/v1/admin/tenants/{tenant['id']}/keys", json={"revoke_others": True})
                for _ in range(6)
            )
        )
        assert [r.status_code for r in rotations] == [201] * 6
        keys = (await admin.get(f"/v1/admin/tenants/{tenant['id']}/keys")).json()["items"]
        assert len([k for k in keys if k["revoked_at"] is None]) == 1
        working = [
            r.json()["api_key"]
            for r in rotations
            if await status_with(client_for, stack.gateway, r.json()["api_key"]) == 200
        ]
        assert len(working) == 1

    async def test_unknown_tenant_is_404(self, admin: httpx.AsyncClient) -> None:
        response = await admin.post(f"/v1/admin/tenants/{UNKNOWN}/keys")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    async def test_extra_fields_are_refused(self, admin: httpx.AsyncClient) -> None:
        tenant = await new_tenant(admin)
        response = await admin.post(
            f"/v1/admin/tenants/{tenant['id']}/keys", json={"api_key": "sk_mine"}
        )
        assert response.status_code == 422

    @pytest.mark.parametrize("value", ["yes", "true", 1, None])
    async def test_revoke_others_is_true_or_false_only(
        self,
        stack: Any,
        admin: httpx.AsyncClient,
        client_for: Callable[..., httpx.AsyncClient],
        value: object,
    ) -> None:
        """A rotation revokes every other key: only a JSON true asks for it."""
        tenant = await new_tenant(admin)
        response = await admin.post(
            f"/v1/admin/tenants/{tenant['id']}/keys", json={"revoke_others": value}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "revoke_others"]
        assert await status_with(client_for, stack.gateway, tenant["api_key"]) == 200

    async def test_disabled_tenant_gets_no_key(self, admin: httpx.AsyncClient) -> None:
        tenant = await new_tenant(admin)
        assert (await admin.post(f"/v1/admin/tenants/{tenant['id']}/disable")).status_code == 200
        response = await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys")
        assert response.status_code == 409


class TestListKeys:
    async def test_keys_are_listed_without_the_keys_themselves(
        self, stack: Any, admin: httpx.AsyncClient
    ) -> None:
        tenant = await new_tenant(admin)
        issued = (await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys")).json()
        response = await admin.get(f"/v1/admin/tenants/{tenant['id']}/keys")
        assert response.status_code == 200
        items = response.json()["items"]
        assert {k["id"] for k in items} >= {issued["id"]}
        assert len(items) == 2
        assert all(
            set(k) == {"id", "tenant_id", "prefix", "created_at", "revoked_at"} for k in items
        )
        assert tenant["api_key"] not in response.text
        assert issued["api_key"] not in response.text

    async def test_pages_with_a_cursor(self, admin: httpx.AsyncClient) -> None:
        tenant = await new_tenant(admin)
        for _ in range(2):
            await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys")
        path = f"/v1/admin/tenants/{tenant['id']}/keys"
        first = (await admin.get(path, params={"limit": 2})).json()
        assert len(first["items"]) == 2
        second = (await admin.get(path, params={"limit": 2, "cursor": first["next_cursor"]})).json()
        assert len(second["items"]) == 1
        assert second["next_cursor"] is None

    async def test_unknown_tenant_is_404(self, admin: httpx.AsyncClient) -> None:
        assert (await admin.get(f"/v1/admin/tenants/{UNKNOWN}/keys")).status_code == 404

    async def test_limit_above_the_cap_is_422(self, admin: httpx.AsyncClient) -> None:
        tenant = await new_tenant(admin)
        response = await admin.get(f"/v1/admin/tenants/{tenant['id']}/keys", params={"limit": 501})
        assert response.status_code == 422


class TestRevokeKey:
    async def test_revoked_key_is_refused_at_once_despite_the_key_cache(
        self,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        async with another_gateway(key_cache_seconds=300) as app, client_for(app) as admin:
            tenant = await new_tenant(admin)
            key_id = (await admin.get(f"/v1/admin/tenants/{tenant['id']}/keys")).json()["items"][0][
                "id"
            ]
            assert await status_with(client_for, app, tenant["api_key"]) == 200  # now cached
            response = await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys/{key_id}/revoke")
            assert response.status_code == 200
            assert response.json()["revoked_at"] is not None
            assert await status_with(client_for, app, tenant["api_key"]) == 401

    async def test_negative_control_the_cache_does_hide_a_revocation_made_behind_its_back(
        self,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        async with another_gateway(key_cache_seconds=300) as app, client_for(app) as admin:
            tenant = await new_tenant(admin)
            assert await status_with(client_for, app, tenant["api_key"]) == 200
            async with app.state.engine.begin() as connection:
                await connection.execute(
                    text("UPDATE api_key SET revoked_at = now() WHERE tenant_id = :tenant"),
                    {"tenant": tenant["id"]},
                )
            # Another replica's revocation reaches this one only when the cache entry expires.
            assert await status_with(client_for, app, tenant["api_key"]) == 200

    async def test_revoking_twice_changes_nothing(self, admin: httpx.AsyncClient) -> None:
        tenant = await new_tenant(admin)
        key_id = (await admin.get(f"/v1/admin/tenants/{tenant['id']}/keys")).json()["items"][0][
            "id"
        ]
        path = f"/v1/admin/tenants/{tenant['id']}/keys/{key_id}/revoke"
        first = (await admin.post(path)).json()
        second = await admin.post(path)
        assert second.status_code == 200
        assert second.json() == first

    async def test_key_of_another_tenant_is_404(self, admin: httpx.AsyncClient) -> None:
        mine, theirs = await new_tenant(admin), await new_tenant(admin)
        their_key = (await admin.get(f"/v1/admin/tenants/{theirs['id']}/keys")).json()["items"][0][
            "id"
        ]
        response = await admin.post(f"/v1/admin/tenants/{mine['id']}/keys/{their_key}/revoke")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(("tenant", "key"), [(UNKNOWN, UNKNOWN), ("known", UNKNOWN)])
    async def test_unknown_tenant_or_key_is_404(
        self, tenant: str, key: str, admin: httpx.AsyncClient
    ) -> None:
        tenant_id = (await new_tenant(admin))["id"] if tenant == "known" else tenant
        response = await admin.post(f"/v1/admin/tenants/{tenant_id}/keys/{key}/revoke")
        assert response.status_code == 404


async def refused_within(
    client_for: Callable[..., httpx.AsyncClient], app: Any, key: str, seconds: float
) -> bool:
    """Whether the key is refused by this gateway within a few seconds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while await status_with(client_for, app, key) != 401:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.fixture
def two_gateways(
    another_gateway: Callable[..., Any],
    client_for: Callable[..., httpx.AsyncClient],
    database_factory: Callable[[str], Any],
) -> Callable[[], AbstractAsyncContextManager[tuple[Any, Any, httpx.AsyncClient]]]:
    """Two gateways on one database, each caching keys for 300 s, with an admin client of the
    first; the second's listener is listening."""

    @asynccontextmanager
    async def make() -> AsyncIterator[tuple[Any, Any, httpx.AsyncClient]]:
        shared = await database_factory("gateway")
        async with (
            another_gateway(shared, key_cache_seconds=300) as one,
            another_gateway(shared, key_cache_seconds=300) as other,
            client_for(one) as admin,
        ):
            await other.state.revocations.listening.wait()
            yield one, other, admin

    return make


class TestEveryReplica:
    """Two gateways on one database, as two workers or two replicas: a key revoked or a tenant
    disabled through one is refused by the other at once, not when its cache expires."""

    @pytest.mark.parametrize("change", ["revoke", "disable", "rotate"])
    async def test_the_other_gateway_refuses_the_key_at_once(
        self,
        change: str,
        two_gateways: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        async with two_gateways() as (_, other, admin):
            tenant = await new_tenant(admin)
            assert await status_with(client_for, other, tenant["api_key"]) == 200  # cached
            path = f"/v1/admin/tenants/{tenant['id']}"
            if change == "revoke":
                key_id = (await admin.get(f"{path}/keys")).json()["items"][0]["id"]
                response = await admin.post(f"{path}/keys/{key_id}/revoke")
            elif change == "disable":
                response = await admin.post(f"{path}/disable")
            else:
                response = await admin.post(f"{path}/keys", json={"revoke_others": True})
            assert response.status_code in (200, 201)
            assert await refused_within(client_for, other, tenant["api_key"], 5)

    async def test_a_listener_that_lost_its_connection_listens_again(
        self,
        two_gateways: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        async with two_gateways() as (one, other, admin):
            listener = other.state.revocations
            async with one.state.engine.begin() as connection:
                cut = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    )
                )
            assert cut == 2  # both gateways' listeners
            tenant = await new_tenant(admin)
            assert await status_with(client_for, other, tenant["api_key"]) == 200
            await asyncio.sleep(0.1)
            await asyncio.wait_for(listener.listening.wait(), 10)
            key_id = (await admin.get(f"/v1/admin/tenants/{tenant['id']}/keys")).json()["items"][0][
                "id"
            ]
            await admin.post(f"/v1/admin/tenants/{tenant['id']}/keys/{key_id}/revoke")
            assert await refused_within(client_for, other, tenant["api_key"], 5)


class TestDisableTenant:
    async def test_disabled_tenant_keys_are_refused_at_once(
        self,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        async with another_gateway(key_cache_seconds=300) as app, client_for(app) as admin:
            tenant = await new_tenant(admin)
            assert await status_with(client_for, app, tenant["api_key"]) == 200
            response = await admin.post(f"/v1/admin/tenants/{tenant['id']}/disable")
            assert response.status_code == 200
            assert response.json()["disabled_at"] is not None
            assert await status_with(client_for, app, tenant["api_key"]) == 401
            listed = (await admin.get("/v1/admin/tenants", params={"limit": 500})).json()
        (row,) = [t for t in listed["items"] if t["id"] == tenant["id"]]
        assert row["disabled_at"] is not None

    async def test_disabling_twice_changes_nothing(self, admin: httpx.AsyncClient) -> None:
        tenant = await new_tenant(admin)
        path = f"/v1/admin/tenants/{tenant['id']}/disable"
        first = (await admin.post(path)).json()
        second = await admin.post(path)
        assert second.status_code == 200
        assert second.json() == first

    async def test_unknown_tenant_is_404(self, admin: httpx.AsyncClient) -> None:
        assert (await admin.post(f"/v1/admin/tenants/{UNKNOWN}/disable")).status_code == 404


class TestTheLastAdminKey:
    """Each test starts a gateway on a database of its own, where the bootstrap key is the only
    admin key."""

    async def test_the_only_admin_key_cannot_be_revoked(
        self,
        admin_key: str,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        async with another_gateway() as app, client_for(app) as admin:
            tenant_id = await admin_tenant_id(admin)
            (key,) = (await admin.get(f"/v1/admin/tenants/{tenant_id}/keys")).json()["items"]
            response = await admin.post(f"/v1/admin/tenants/{tenant_id}/keys/{key['id']}/revoke")
            assert response.status_code == 409
            assert response.headers["content-type"] == "application/problem+json"
            assert await status_with(client_for, app, admin_key) == 200

    async def test_the_only_admin_tenant_cannot_be_disabled(
        self,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        async with another_gateway() as app, client_for(app) as admin:
            tenant_id = await admin_tenant_id(admin)
            assert (await admin.post(f"/v1/admin/tenants/{tenant_id}/disable")).status_code == 409

    async def test_rotating_the_bootstrap_key_keeps_the_new_one_and_survives_a_restart(
        self,
        admin_key: str,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
        database_factory: Callable[[str], Any],
    ) -> None:
        database = await database_factory("gateway_rotation")
        async with another_gateway(database_url=database) as app, client_for(app) as admin:
            tenant_id = await admin_tenant_id(admin)
            response = await admin.post(
                f"/v1/admin/tenants/{tenant_id}/keys", json={"revoke_others": True}
            )
            assert response.status_code == 201
            new_key = response.json()["api_key"]
            assert await status_with(client_for, app, admin_key) == 401
            assert await status_with(client_for, app, new_key) == 200
        # SUBSIDY_ADMIN_KEY still names the revoked key: starting again must not revive it.
        async with another_gateway(database_url=database) as app:
            assert await status_with(client_for, app, admin_key) == 401
            assert await status_with(client_for, app, new_key) == 200

    async def test_a_second_admin_key_lets_the_first_go(
        self,
        admin_key: str,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        async with another_gateway() as app, client_for(app) as admin:
            other = await new_tenant(admin, role="admin")
            tenant_id = await admin_tenant_id(admin)
            (key,) = (await admin.get(f"/v1/admin/tenants/{tenant_id}/keys")).json()["items"]
            revoked = await admin.post(f"/v1/admin/tenants/{tenant_id}/keys/{key['id']}/revoke")
            assert revoked.status_code == 200
            assert await status_with(client_for, app, admin_key) == 401
            async with client_for(app, other["api_key"]) as second:
                assert (
                    await second.post(f"/v1/admin/tenants/{other['id']}/disable")
                ).status_code == 409

    @pytest.mark.parametrize("second_change", ["disable", "revoke"])
    async def test_two_admins_taking_each_other_out_at_once_leave_one(
        self,
        admin_key: str,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
        second_change: str,
    ) -> None:
        """Two admin tenants, each the other's only fellow: X disables Y while Y disables X (or
        revokes X's key). Each change alone keeps an admin key; both together would keep none."""
        async with another_gateway() as app:
            async with client_for(app) as bootstrap:
                survivor = {"id": await admin_tenant_id(bootstrap), "api_key": admin_key}
            for _ in range(5):
                async with client_for(app, survivor["api_key"]) as current:
                    x = await new_tenant(current, role="admin")
                    y = await new_tenant(current, role="admin")
                    await _revoke_every_key_of(current, survivor["id"])
                as_x, as_y = client_for(app, x["api_key"]), client_for(app, y["api_key"])
                async with as_x, as_y:
                    keys = await as_x.get(f"/v1/admin/tenants/{x['id']}/keys")
                    (x_key,) = keys.json()["items"]
                    second = (
                        as_y.post(f"/v1/admin/tenants/{x['id']}/disable")
                        if second_change == "disable"
                        else as_y.post(f"/v1/admin/tenants/{x['id']}/keys/{x_key['id']}/revoke")
                    )
                    answers = await asyncio.gather(
                        as_x.post(f"/v1/admin/tenants/{y['id']}/disable"), second
                    )
                # The other is refused: 409, or 401 where the first had disabled its caller
                # before its key was read.
                statuses = sorted(a.status_code for a in answers)
                assert statuses in ([200, 401], [200, 409]), [a.text for a in answers]
                (survivor,) = [
                    t for t in (x, y) if await status_with(client_for, app, t["api_key"]) == 200
                ]


async def _revoke_every_key_of(admin: httpx.AsyncClient, tenant_id: str) -> None:
    keys = (await admin.get(f"/v1/admin/tenants/{tenant_id}/keys")).json()["items"]
    for key in keys:
        if key["revoked_at"] is None:
            response = await admin.post(f"/v1/admin/tenants/{tenant_id}/keys/{key['id']}/revoke")
            assert response.status_code == 200, response.text
