"""Headers read by hand answer as FastAPI's header parameters do, for every kind of value."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Header, Request
from subsidy_common.headers import HandHeader
from subsidy_common.problems import install_problem_handlers

TENANT = HandHeader("X-Tenant-ID", required=True, min_length=1, max_length=36)
KEY = HandHeader("Idempotency-Key", max_length=8)


def app() -> FastAPI:
    built = FastAPI()
    install_problem_handlers(built)

    @built.post("/declared")
    async def declared(
        tenant: Annotated[str, Header(alias="X-Tenant-ID", min_length=1, max_length=36)],
        key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=8)] = None,
    ) -> dict[str, str | None]:
        return {"tenant": tenant, "key": key}

    @built.post("/by-hand")
    async def by_hand(request: Request) -> dict[str, str | None]:
        return {"tenant": TENANT.require(request), "key": KEY.read(request)}

    return built


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Tenant-ID": "t1", "Idempotency-Key": "k1"},
        {"X-Tenant-ID": "t1"},
        {},
        {"X-Tenant-ID": ""},
        {"X-Tenant-ID": "t" * 37},
        {"X-Tenant-ID": "t1", "Idempotency-Key": "k" * 9},
        {"X-Tenant-ID": "t1", "Idempotency-Key": ""},
    ],
    ids=["both", "no key", "no tenant", "empty tenant", "long tenant", "long key", "empty key"],
)
async def test_the_same_answer_as_a_declared_header(headers: dict[str, str]) -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        declared = await client.post("/declared", headers=headers)
        by_hand = await client.post("/by-hand", headers=headers)
    assert (by_hand.status_code, by_hand.json()) == (declared.status_code, declared.json())


def test_it_documents_itself() -> None:
    assert TENANT.parameter() == {
        "name": "X-Tenant-ID",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "title": "X-Tenant-ID", "minLength": 1, "maxLength": 36},
    }
