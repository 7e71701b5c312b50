"""The calculator keeps serving its last snapshot when the registry goes away."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from calculator import registry_client
from calculator.config import Settings as CalculatorSettings
from calculator.engine.rules import compile_snapshot
from calculator.main import create_app as create_calculator
from registry.config import Settings as RegistrySettings
from registry.main import create_app as create_registry
from subsidy_common.problems import InvalidInput
from testkit import live_server, running

REQUEST = {
    "applicant": {"id": "91510500MA62B8XY4F", "kind": "enterprise", "region": "510502"},
    "events": [{"matter": "patent.invention.granted", "date": "2016-05-10", "subject": "ZL1"}],
}


async def test_registry_down_keeps_the_last_snapshot(
    database_factory: Callable[[str], Awaitable[str]],
) -> None:
    registry = create_registry(RegistrySettings(database_url=await database_factory("registry")))
    calculator_db = await database_factory("calculator")
    async with live_server(registry) as registry_url:
        calculator = create_calculator(
            CalculatorSettings(
                database_url=calculator_db, registry_url=registry_url, snapshot_refresh_seconds=0.1
            )
        )
        lifespan = running(calculator)
        await lifespan.__aenter__()
    try:
        await asyncio.sleep(0.5)  # several revalidations fail meanwhile
        transport = httpx.ASGITransport(app=calculator)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            ready = await client.get("/readyz")
            calculated = await client.post("/v1/calculations", json=REQUEST)
            told = await client.post("/internal/v1/snapshot/refresh")  # after a policy write
        assert ready.status_code == 200
        assert told.status_code == 503
        assert told.headers["retry-after"]
        snapshot = ready.json()["checks"]["registry_snapshot"]
        assert snapshot["registry_reachable"] is False
        assert snapshot["checked_seconds_ago"] >= 0.3
        assert calculated.status_code == 200
        assert calculated.json()["registry_version"] == snapshot["registry_version"]
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_no_snapshot_yet_is_not_ready_and_503(
    database_factory: Callable[[str], Awaitable[str]],
) -> None:
    calculator = create_calculator(
        CalculatorSettings(
            database_url=await database_factory("calculator"), registry_url="http://127.0.0.1:9"
        )
    )
    async with running(calculator):
        transport = httpx.ASGITransport(app=calculator)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            ready = await client.get("/readyz")
            calculated = await client.post("/v1/calculations", json=REQUEST)
    assert ready.status_code == 503
    assert calculated.status_code == 503
    assert calculated.headers["retry-after"]


A_DOCUMENT = {
    "id": "snapshot-store-test",
    "doc_no": "测试〔2020〕1号",
    "title": "测试用政策文件",
    "issuer": "泸州市人民政府",
    "level": "city",
    "jurisdiction": ["510500"],
    "effective_from": "2020-01-01",
    "source": {"title": "测试"},
    "clauses": [
        {
            "id": "invention",
            "ref": "（一）",
            "matter": "patent.invention.granted",
            "beneficiaries": ["enterprise"],
            "amount": {"kind": "per_unit", "rate": "3000", "unit": "件"},
            "quote": "对新授权的发明专利每件资助 3000 元",
        }
    ],
}


async def test_instants_under_one_registry_version_share_its_rule_set(
    database_factory: Callable[[str], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A past rule set is compiled once per registry version, not once per instant asked."""
    # Instants of the last seconds are asked again each time (a write may still be settling);
    # here the instants are a moment old.
    monkeypatch.setattr(registry_client, "SETTLED_SECONDS", 0.0)
    registry = create_registry(RegistrySettings(database_url=await database_factory("registry")))
    async with live_server(registry) as registry_url:
        calculator = create_calculator(
            CalculatorSettings(
                database_url=await database_factory("calculator"), registry_url=registry_url
            )
        )
        async with running(calculator):
            store = calculator.state.snapshots
            assert await store.refresh()
            now = dt.datetime.now(dt.UTC)
            assert await store.as_of(now) is store.rules
            assert await store.as_of(now - dt.timedelta(microseconds=1)) is store.rules
            async with httpx.AsyncClient(base_url=registry_url) as admin:
                created = await admin.post(
                    "/v1/admin/policies",
                    json={"reason": "新文件", "document": A_DOCUMENT},
                    headers={"X-Actor": "test-admin"},
                )
                assert created.status_code == 201, created.text
            assert await store.refresh()
            then = await store.as_of(now)
            assert then is not store.rules
            assert then.version != store.rules.version
            assert await store.as_of(now - dt.timedelta(microseconds=1)) is then
            with pytest.raises(InvalidInput) as before_the_first_record:
                await store.as_of(dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
            assert before_the_first_record.value.errors == [
                {
                    "loc": ["body", "registry_as_of"],
                    "msg": before_the_first_record.value.errors[0]["msg"],
                }
            ]
            assert before_the_first_record.value.errors[0]["msg"].startswith(
                "is before the registry's first record"
            )


async def test_a_snapshot_that_cannot_be_compiled_keeps_the_last_one(
    database_factory: Callable[[str], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry change the calculator cannot compile does not end its revalidation: the last
    good rule set serves, readiness names the error, and the next good change is taken."""
    registry = create_registry(RegistrySettings(database_url=await database_factory("registry")))
    async with live_server(registry) as registry_url:
        calculator = create_calculator(
            CalculatorSettings(
                database_url=await database_factory("calculator"),
                registry_url=registry_url,
                snapshot_refresh_seconds=0.05,
            )
        )
        async with running(calculator):
            store = calculator.state.snapshots
            served = store.rules.version
            failing = True

            def compile_once_fixed(snapshot: Any) -> Any:
                if failing:
                    raise RecursionError("maximum recursion depth exceeded")
                return compile_snapshot(snapshot)

            monkeypatch.setattr(registry_client, "compile_snapshot", compile_once_fixed)
            transport = httpx.ASGITransport(app=registry)
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as admin:
                repealed = await admin.post(
                    "/v1/admin/policies/luzhou-2023-social-science-award/repeal",
                    json={"date": "2024-01-01", "reason": "测试"},
                    headers={"X-Actor": "test"},
                )
            assert repealed.status_code == 200, repealed.text
            await asyncio.sleep(0.3)
            assert store.rules.version == served
            assert "RecursionError" in store.health()["last_error"]
            failing = False
            await asyncio.sleep(0.3)
            assert store.rules.version != served
            assert "last_error" not in store.health()


async def test_a_registry_still_starting_is_news_and_one_that_stays_away_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` starts the services together: the calculator's first attempts meet a registry
    that is not listening yet, which is how starting looks, not a fault."""
    caplog.set_level(logging.DEBUG, logger=registry_client.__name__)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=1) as client:
        store = registry_client.SnapshotStore(client, refresh_seconds=1)
        for _ in range(3):
            assert await store.refresh() is False
        said = [(r.levelno, r.getMessage()) for r in caplog.records]
        assert [level for level, _ in said] == [logging.INFO, logging.DEBUG, logging.DEBUG]
        assert said[0][1].startswith("waiting for a first registry snapshot: ")
        monkeypatch.setattr(registry_client, "FIRST_SNAPSHOT_GRACE_SECONDS", 0.0)
        caplog.clear()
        for _ in range(3):
            assert await store.refresh() is False
        levels = [r.levelno for r in caplog.records]
        assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]
