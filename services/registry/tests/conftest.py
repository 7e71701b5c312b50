"""The registry under test: migrated on a throwaway PostgreSQL database, reference data loaded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from registry.config import Settings
from registry.main import create_app
from testkit import running


@pytest.fixture(scope="session")
async def registry_app(database_factory: Callable[[str], Awaitable[str]]) -> AsyncIterator[FastAPI]:
    url = await database_factory("registry")
    async with running(create_app(Settings(database_url=url))) as app:
        yield app


@pytest.fixture
async def client(registry_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=registry_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
        yield c
