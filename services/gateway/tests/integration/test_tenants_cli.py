"""`gateway-tenants`: tenants made from the shell, straight in the gateway's database."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway.tenants.cli import main

# Nothing listens on port 1: the registry of a `make run` on 8001 is never asked by mistake.
NO_REGISTRY = "http://127.0.0.1:1"


async def cli(
    *args: str,
    database_url: str | None = None,
    data_dir: Path | None = None,
    registry_url: str = NO_REGISTRY,
) -> tuple[int, str, str]:
    """Run the tool as its own process, the way an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "SUBSIDY_"))}
    env["GATEWAY_REGISTRY_URL"] = registry_url
    if database_url is not None:
        env["GATEWAY_DATABASE_URL"] = database_url
    if data_dir is not None:
        env["SUBSIDY_DATA_DIR"] = str(data_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.tenants.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def name() -> str:
    return f"江阳区人社局-{uuid.uuid4().hex[:6]}"


class TestCreate:
    async def test_the_printed_key_works_at_the_gateway(
        self, stack: Any, client_for: Callable[..., httpx.AsyncClient]
    ) -> None:
        tenant_name = name()
        code, out, err = await cli(
            "create", "--name", tenant_name, "--role", "operator", "--region", "510502", "--json",
            database_url=stack.gateway.state.settings.database_url, registry_url=stack.registry_url,
        )  # fmt: skip
        assert code == 0, err
        created = json.loads(out)
        assert (created["name"], created["role"], created["region"]) == (
            tenant_name, "operator", "510502",
        )  # fmt: skip
        async with client_for(stack.gateway, created["api_key"]) as client:
            assert (await client.get("/v1/regions")).status_code == 200
        async with client_for(stack.gateway) as admin:
            changes = await admin.get(
                "/v1/admin/audit/tenants", params={"tenant_id": created["id"]}
            )
        [change] = changes.json()["items"]
        assert (change["action"], change["actor"]) == (
            "create",
            f"gateway-tenants [{getpass.getuser()}]",
        )

    async def test_a_fresh_database_is_migrated_first(
        self, stack: Any, database_factory: Callable[[str], Awaitable[str]]
    ) -> None:
        code, out, err = await cli(
            "create", "--name", "泸州市政策办", "--role", "admin", "--region", "510500",
            database_url=await database_factory("gateway_cli"), registry_url=stack.registry_url,
        )  # fmt: skip
        assert code == 0, err
        assert "sk_" in out

    async def test_without_a_database_url_it_uses_sqlite_in_the_data_dir(
        self, tmp_path: Path
    ) -> None:
        code, out, err = await cli(
            "create", "--name", name(), "--role", "operator", "--region", "510500-GX",
            "--unchecked-region", "--json", data_dir=tmp_path,
        )  # fmt: skip
        assert code == 0, err
        assert (tmp_path / "gateway.db").exists()
        assert json.loads(out)["region"] == "510500-GX"

    async def test_a_region_the_registry_does_not_know_is_refused(
        self, stack: Any, tmp_path: Path
    ) -> None:
        code, out, err = await cli(
            "create", "--name", name(), "--role", "operator", "--region", "510599",
            data_dir=tmp_path, registry_url=stack.registry_url,
        )  # fmt: skip
        assert code == 2
        assert "--region: 510599 is not one of the registry's regions" in err
        assert "sk_" not in out
        listed = await cli("list", "--json", data_dir=tmp_path)
        assert listed[:2] == (0, "")

    async def test_without_the_registry_nothing_is_created_and_the_way_out_is_named(
        self, tmp_path: Path
    ) -> None:
        code, out, err = await cli(
            "create", "--name", name(), "--role", "operator", "--region", "510502",
            data_dir=tmp_path,
        )  # fmt: skip
        assert code == 1
        for named in (NO_REGISTRY, "GATEWAY_REGISTRY_URL", "--unchecked-region"):
            assert named in err
        assert "sk_" not in out
        assert not (tmp_path / "gateway.db").exists()

    async def test_a_taken_name_is_refused_and_no_key_printed(self, stack: Any) -> None:
        code, out, err = await cli(
            "create", "--name", "admin", "--role", "operator", "--region", "510502",
            database_url=stack.gateway.state.settings.database_url, registry_url=stack.registry_url,
        )  # fmt: skip
        assert code == 1
        assert "already exists" in err
        assert "sk_" not in out

    def test_a_malformed_region_is_refused_naming_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("SUBSIDY_DATA_DIR", str(tmp_path))
        monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
        code = main(["create", "--name", name(), "--role", "operator", "--region", "5105"])
        assert code == 2
        assert "--region" in capsys.readouterr().err
        assert not (tmp_path / "gateway.db").exists()

    def test_help_says_the_region_must_exist_in_the_registry(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["create", "--help"])
        assert exit_.value.code == 0
        assert "/v1/regions" in capsys.readouterr().out


class TestList:
    async def test_tenants_are_listed_without_keys(self, stack: Any) -> None:
        code, out, err = await cli(
            "list", "--json", database_url=stack.gateway.state.settings.database_url
        )
        assert code == 0, err
        tenants = [json.loads(line) for line in out.splitlines()]
        assert "admin" in {t["name"] for t in tenants}
        assert all("api_key" not in t for t in tenants)
        assert "sk_" not in out
