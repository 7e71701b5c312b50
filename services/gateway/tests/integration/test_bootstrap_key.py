"""SUBSIDY_ADMIN_KEY is the bootstrap key: replacing it revokes the one it replaces, and only
that one; databases made before bootstrap keys were marked are upgraded to the same rule."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from gateway.auth.keys import digest, display_prefix, new_key
from gateway.config import Settings
from gateway.main import SERVICE
from pydantic import SecretStr
from sqlalchemy import text
from subsidy_common.database import alembic_config, create_engine, upgrade_head
from testkit.gateway import admin_tenant_id, new_tenant, status_with

GatewayFactory = Callable[..., Any]
ClientFactory = Callable[..., httpx.AsyncClient]
SCRIPTS = Settings().migrations_dir(SERVICE)


class TestReplacingTheBootstrapKey:
    async def test_restarting_with_another_key_revokes_the_previous_one(
        self,
        admin_key: str,
        another_gateway: GatewayFactory,
        client_for: ClientFactory,
        database_factory: Callable[[str], Awaitable[str]],
    ) -> None:
        database = await database_factory("gateway_bootstrap")
        async with another_gateway(database_url=database) as app, client_for(app) as admin:
            other_admin = (await new_tenant(admin, "admin", "510500"))["api_key"]
            # A key of the bootstrap key's own tenant, but issued through the API.
            issued = (
                await admin.post(f"/v1/admin/tenants/{await admin_tenant_id(admin)}/keys")
            ).json()["api_key"]
        replacement = new_key()
        async with another_gateway(database_url=database, admin_key=SecretStr(replacement)) as app:
            assert await status_with(client_for, app, admin_key) == 401
            assert await status_with(client_for, app, replacement) == 200
            assert await status_with(client_for, app, other_admin) == 200
            assert await status_with(client_for, app, issued) == 200
            async with client_for(app, replacement) as admin:
                tenants = (await admin.get("/v1/admin/tenants")).json()["items"]
                assert [t["name"] for t in tenants].count("admin") == 1
                keys = (
                    await admin.get(f"/v1/admin/tenants/{await admin_tenant_id(admin)}/keys")
                ).json()["items"]
        revoked = {k["prefix"] for k in keys if k["revoked_at"] is not None}
        assert revoked == {display_prefix(admin_key)}

    async def test_a_replica_restarting_with_the_previous_key_revokes_nothing_newer(
        self,
        admin_key: str,
        another_gateway: GatewayFactory,
        client_for: ClientFactory,
        database_factory: Callable[[str], Awaitable[str]],
    ) -> None:
        database = await database_factory("gateway_bootstrap")
        replacement = new_key()
        async with another_gateway(database_url=database):
            pass
        async with another_gateway(database_url=database, admin_key=SecretStr(replacement)):
            pass
        # A pod of the previous rollout, with the previous Secret, starts again.
        async with another_gateway(database_url=database) as app:
            assert await status_with(client_for, app, admin_key) == 401
            assert await status_with(client_for, app, replacement) == 200

    async def test_the_same_key_again_changes_nothing(
        self,
        admin_key: str,
        another_gateway: GatewayFactory,
        client_for: ClientFactory,
        database_factory: Callable[[str], Awaitable[str]],
    ) -> None:
        database = await database_factory("gateway_bootstrap")
        for _ in range(3):
            async with another_gateway(database_url=database) as app:
                assert await status_with(client_for, app, admin_key) == 200


class TestAKeyThatCannotBeTheAdminKey:
    """A mistaken SUBSIDY_ADMIN_KEY replaces nothing: the admin keys on record keep working."""

    async def test_an_operator_key_revokes_nothing(
        self,
        admin_key: str,
        another_gateway: GatewayFactory,
        client_for: ClientFactory,
        database_factory: Callable[[str], Awaitable[str]],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        database = await database_factory("gateway_bootstrap")
        async with another_gateway(database_url=database) as app, client_for(app) as admin:
            operator = await new_tenant(admin, "operator", "510502")
        capsys.readouterr()
        async with another_gateway(
            database_url=database, admin_key=SecretStr(operator["api_key"])
        ) as app:
            assert await admin_status_with(client_for, app, admin_key) == 200
            assert await admin_status_with(client_for, app, operator["api_key"]) == 403
        assert f"its tenant {operator['name']!r} has the role operator" in capsys.readouterr().err
        # Nor was it marked as the bootstrap key: the admin key configured again leaves it be.
        async with another_gateway(database_url=database) as app:
            assert await status_with(client_for, app, operator["api_key"]) == 200

    async def test_a_new_key_for_a_disabled_admin_tenant_revokes_nothing(
        self,
        admin_key: str,
        another_gateway: GatewayFactory,
        client_for: ClientFactory,
        database_factory: Callable[[str], Awaitable[str]],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        database = await database_factory("gateway_bootstrap")
        async with another_gateway(database_url=database) as app, client_for(app) as admin:
            other = await new_tenant(admin, "admin", "510500")
            bootstrap_tenant = await admin_tenant_id(admin)
            async with client_for(app, other["api_key"]) as second:
                disabled = await second.post(f"/v1/admin/tenants/{bootstrap_tenant}/disable")
                assert disabled.status_code == 200
        replacement = new_key()
        capsys.readouterr()
        async with another_gateway(database_url=database, admin_key=SecretStr(replacement)) as app:
            assert await status_with(client_for, app, replacement) == 401
            assert await admin_status_with(client_for, app, other["api_key"]) == 200
            async with client_for(app, other["api_key"]) as second:
                keys = (await second.get(f"/v1/admin/tenants/{bootstrap_tenant}/keys")).json()
        assert "its tenant 'admin' is disabled" in capsys.readouterr().err
        assert [k["prefix"] for k in keys["items"]] == [display_prefix(admin_key)]


async def admin_status_with(client_for: ClientFactory, app: Any, key: str) -> int:
    """The status an admin's request with this key is answered with."""
    async with client_for(app, key) as client:
        return (await client.get("/v1/admin/tenants")).status_code


class TestDatabasesFromBeforeTheMark:
    async def test_the_first_bootstrap_key_is_marked_and_revoked_when_replaced(
        self,
        another_gateway: GatewayFactory,
        client_for: ClientFactory,
        database_factory: Callable[[str], Awaitable[str]],
    ) -> None:
        """Before this migration, a restart with another key added it beside the first one."""
        database = await database_factory("gateway_legacy")
        await asyncio.to_thread(command.upgrade, alembic_config(SCRIPTS, database), "g0001")
        first, second, issued = new_key(), new_key(), new_key()
        start = dt.datetime(2026, 11, 30, 8, tzinfo=dt.UTC)
        engine = create_engine(database)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO tenant (id, name, role, region, created_at)"
                        " VALUES ('t-admin', 'admin', 'admin', '510500', :at)"
                    ),
                    {"at": start},
                )
                for key, minutes in ((first, 0), (issued, 5), (second, 10)):
                    await connection.execute(
                        text(
                            "INSERT INTO api_key (id, tenant_id, prefix, key_hash, created_at)"
                            " VALUES (:id, 't-admin', :prefix, :hash, :at)"
                        ),
                        {
                            "id": str(uuid.uuid4()),
                            "prefix": display_prefix(key),
                            "hash": digest(key),
                            "at": start + dt.timedelta(minutes=minutes),
                        },
                    )
        finally:
            await engine.dispose()
        # Started with the second key: the migration runs, then the first key is replaced.
        async with another_gateway(database_url=database, admin_key=SecretStr(second)) as app:
            assert await status_with(client_for, app, first) == 401
            assert await status_with(client_for, app, second) == 200
            assert await status_with(client_for, app, issued) == 200
        # The second key was marked when the gateway started with it: replacing it revokes it.
        third = new_key()
        async with another_gateway(database_url=database, admin_key=SecretStr(third)) as app:
            assert await status_with(client_for, app, second) == 401
            assert await status_with(client_for, app, third) == 200
            assert await status_with(client_for, app, issued) == 200


async def test_the_migration_runs_both_ways_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    config = alembic_config(SCRIPTS, url)
    await asyncio.to_thread(command.upgrade, config, "g0001")
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO tenant (id, name, role, region, created_at)"
                    " VALUES ('t', 'admin', 'admin', '510500', '2026-11-30 08:00:00.000000')"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO api_key (id, tenant_id, prefix, key_hash, created_at) VALUES"
                    " ('k1', 't', 'sk_a', 'h1', '2026-11-30 08:00:00.000000'),"
                    " ('k2', 't', 'sk_b', 'h2', '2026-11-30 09:00:00.000000')"
                )
            )
        await asyncio.to_thread(upgrade_head, SCRIPTS, url)
        async with engine.connect() as connection:
            marked = (
                await connection.execute(text("SELECT id, bootstrap FROM api_key ORDER BY id"))
            ).all()
        assert [(key_id, bool(flag)) for key_id, flag in marked] == [("k1", True), ("k2", False)]
        await asyncio.to_thread(command.downgrade, config, "g0001")
        await asyncio.to_thread(upgrade_head, SCRIPTS, url)
    finally:
        await engine.dispose()
