"""The gateway under test, talking over real HTTP to a live registry and calculator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from calculator.config import Settings as CalculatorSettings
from calculator.main import create_app as create_calculator
from fastapi import FastAPI
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway
from pydantic import SecretStr
from registry.config import Settings as RegistrySettings
from registry.main import create_app as create_registry
from testkit import live_server, running

ADMIN_KEY = "sk_test-admin-key-for-the-suite-000000000000"


@dataclass
class Stack:
    gateway: FastAPI
    calculator: FastAPI
    registry_url: str
    calculator_url: str

    async def refresh_snapshot(self) -> None:
        """Make the calculator see registry writes now rather than at its next revalidation."""
        assert await self.calculator.state.snapshots.refresh()


@pytest.fixture(scope="session")
async def stack(database_factory: Callable[[str], Awaitable[str]]) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as stack:
        registry = create_registry(
            RegistrySettings(database_url=await database_factory("registry"))
        )
        registry_url = await stack.enter_async_context(live_server(registry))
        calculator = create_calculator(
            CalculatorSettings(
                database_url=await database_factory("calculator"), registry_url=registry_url
            )
        )
        calculator_url = await stack.enter_async_context(live_server(calculator))
        gateway = create_gateway(
            GatewaySettings(
                database_url=await database_factory("gateway"),
                registry_url=registry_url,
                calculator_url=calculator_url,
                admin_key=SecretStr(ADMIN_KEY),
                key_cache_seconds=0,
                # The suite makes many requests as one admin; rate limits have their own tests.
                rate_limit="100000/minute",
            )
        )
        await stack.enter_async_context(running(gateway))
        yield Stack(gateway, calculator, registry_url, calculator_url)


GatewayFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def another_gateway(
    stack: Stack, database_factory: Callable[[str], Awaitable[str]]
) -> GatewayFactory:
    """Start one more gateway in front of the same registry and calculator, with its own
    settings (and its own database unless one is given), for as long as a block runs."""

    @asynccontextmanager
    async def make(database_url: str | None = None, **settings: Any) -> AsyncIterator[FastAPI]:
        values: dict[str, Any] = {
            "registry_url": stack.registry_url,
            "calculator_url": stack.calculator_url,
            "admin_key": SecretStr(ADMIN_KEY),
            "key_cache_seconds": 0,
            **settings,
        }
        app = create_gateway(
            GatewaySettings(
                database_url=database_url or await database_factory("gateway"), **values
            )
        )
        async with running(app):
            yield app

    return make


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
def admin_key() -> str:
    """The bootstrap admin key every gateway of the suite starts with."""
    return ADMIN_KEY


@pytest.fixture
def client_for() -> ClientFactory:
    """Clients of any gateway app, with a key or without (the admin key by default)."""

    def make(app: FastAPI, key: str | None = ADMIN_KEY) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=headers
        )

    return make


@pytest.fixture
async def anonymous(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=stack.gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=stack.gateway)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=headers
    ) as c:
        yield c


@pytest.fixture
def as_key(stack: Stack) -> Callable[[str], httpx.AsyncClient]:
    def make(key: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=stack.gateway)
        return httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {key}"},
        )

    return make


ENTERPRISE = {"id": "91510500MA62B8XY4F", "kind": "enterprise", "name": "泸州示例科技有限公司"}
MATTER = "film.city_promotion"


def film_document(amount: int) -> dict[str, Any]:
    """A document alone in its window (1990), so no real policy competes with it."""
    serial = uuid.uuid4().hex[:10]
    return {
        "id": f"calc-{serial}",
        "doc_no": f"测试〔1990〕{serial}号",
        "title": "计算测试文件",
        "issuer": "泸州市人民政府",
        "level": "city",
        "jurisdiction": ["510500-CJ"],
        "effective_from": "1990-01-01",
        "effective_to": "1990-12-31",
        "source": {"title": "测试"},
        "clauses": [
            {
                "id": "film",
                "ref": "（一）",
                "matter": MATTER,
                "beneficiaries": ["enterprise", "individual", "institution"],
                "amount": {"kind": "fixed", "value": amount},
                "quote": f"给予 {amount} 元奖励",
            }
        ],
    }


def claim_case(region: str = "510500-CJ", day: str = "1990-06-01", **extra: Any) -> dict[str, Any]:
    return {
        "applicant": {**ENTERPRISE, "region": region},
        "events": [{"matter": MATTER, "date": day, "subject": f"FILM-{uuid.uuid4().hex[:6]}"}],
        **extra,
    }


@pytest.fixture(scope="session")
async def film(stack: Any) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=stack.gateway)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://g", headers=headers
    ) as admin:
        document = film_document(123456)
        created = await admin.post(
            "/v1/admin/policies", json={"reason": "测试", "document": document}
        )
        assert created.status_code == 201, created.text
    await stack.refresh_snapshot()
    return {"document": document, "etag": created.headers["etag"]}


@pytest.fixture
def case() -> Callable[..., dict[str, Any]]:
    """A calculation request for the film document (region, day and fields may vary)."""
    return claim_case
