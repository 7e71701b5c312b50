"""The gateway under test, talking over real HTTP to a live registry and calculator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

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
            )
        )
        await stack.enter_async_context(running(gateway))
        yield Stack(gateway, calculator, registry_url, calculator_url)


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
