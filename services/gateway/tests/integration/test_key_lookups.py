"""Key lookups: one database lookup per key at a time, whatever the number of requests waiting;
none for a string that cannot be a key; made-up keys remembered apart from valid ones."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from gateway.auth import principal as principal_module
from gateway.auth.keys import new_key
from gateway.auth.principal import Authenticator
from gateway.tenants import repository


class GatedLookups:
    """The real lookup, counted, each one held until the test opens the gate."""

    def __init__(self, real: Callable[..., Awaitable[Any]]) -> None:
        self.real = real
        self.started = 0
        self.gate = asyncio.Event()

    async def __call__(self, session: Any, key_hash: str) -> Any:
        self.started += 1
        await self.gate.wait()
        return await self.real(session, key_hash)


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> GatedLookups:
    gated = GatedLookups(repository.active_key)
    monkeypatch.setattr(repository, "active_key", gated)
    return gated


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_requests_waiting_on_one_key_share_one_lookup(
    stack: Any, admin_key: str, lookups: GatedLookups
) -> None:
    keys = Authenticator(stack.gateway.state.sessions, ttl=0)
    waiting = [asyncio.create_task(keys.principal(admin_key)) for _ in range(50)]
    await settle()
    assert lookups.started == 1
    lookups.gate.set()
    found = await asyncio.gather(*waiting)
    assert None not in found
    assert len({p.tenant_id for p in found if p is not None}) == 1
    # The answer expired at once (ttl 0): the next request looks the key up again.
    await keys.principal(admin_key)
    assert lookups.started == 2


async def test_an_unknown_key_is_looked_up_once_too(stack: Any, lookups: GatedLookups) -> None:
    keys = Authenticator(stack.gateway.state.sessions, ttl=0)
    unknown = new_key()
    waiting = [asyncio.create_task(keys.principal(unknown)) for _ in range(10)]
    await settle()
    lookups.gate.set()
    assert await asyncio.gather(*waiting) == [None] * 10
    assert lookups.started == 1


async def test_a_request_after_forget_does_not_join_an_earlier_lookup(
    stack: Any, admin_key: str, lookups: GatedLookups
) -> None:
    keys = Authenticator(stack.gateway.state.sessions, ttl=60)
    before = asyncio.create_task(keys.principal(admin_key))
    await settle()
    keys.forget()  # a key revoked while the first lookup was under way
    after = asyncio.create_task(keys.principal(admin_key))
    await settle()
    assert lookups.started == 2
    lookups.gate.set()
    await asyncio.gather(before, after)


async def test_a_waiter_that_goes_away_leaves_the_lookup_to_the_others(
    stack: Any, admin_key: str, lookups: GatedLookups
) -> None:
    keys = Authenticator(stack.gateway.state.sessions, ttl=0)
    first = asyncio.create_task(keys.principal(admin_key))
    second = asyncio.create_task(keys.principal(admin_key))
    await settle()
    first.cancel()
    await settle()
    lookups.gate.set()
    assert (await second) is not None
    assert first.cancelled()
    assert lookups.started == 1


@pytest.mark.parametrize(
    "bogus",
    [
        "sk_nobody-issued-this",  # too short
        "REPLACE_ME",
        "sk_" + "a" * 126,  # too long
        "sk_" + "é" * 43,  # not URL-safe
        "pk_" + "a" * 43,  # not our prefix
        "x" * 8000,
    ],
)
async def test_a_string_that_cannot_be_a_key_is_refused_without_a_lookup(
    stack: Any, lookups: GatedLookups, bogus: str
) -> None:
    lookups.gate.set()
    keys = Authenticator(stack.gateway.state.sessions, ttl=60)
    assert await keys.principal(bogus) is None
    assert lookups.started == 0


async def test_an_unknown_key_is_remembered_for_the_cache_lifetime(
    stack: Any, lookups: GatedLookups
) -> None:
    lookups.gate.set()
    keys = Authenticator(stack.gateway.state.sessions, ttl=60)
    unknown = new_key()
    for _ in range(5):
        assert await keys.principal(unknown) is None
    assert lookups.started == 1


async def test_made_up_keys_never_push_out_the_keys_that_work(
    stack: Any, admin_key: str, lookups: GatedLookups, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(principal_module, "REFUSED_KEYS_REMEMBERED", 3)
    lookups.gate.set()
    keys = Authenticator(stack.gateway.state.sessions, ttl=60)
    assert await keys.principal(admin_key) is not None
    made_up = [new_key() for _ in range(10)]
    for key in made_up:
        assert await keys.principal(key) is None
    assert lookups.started == 11
    assert await keys.principal(admin_key) is not None  # still remembered
    assert await keys.principal(made_up[-1]) is None  # among the newest refusals
    assert lookups.started == 11
    assert await keys.principal(made_up[0]) is None  # the oldest refusal was let go
    assert lookups.started == 12


async def test_beyond_its_bound_the_valid_key_cache_lets_only_the_oldest_go(
    stack: Any,
    admin_key: str,
    admin: httpx.AsyncClient,
    lookups: GatedLookups,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups.gate.set()
    tenants = [
        await admin.post(
            "/v1/admin/tenants",
            json={"name": f"cache-{uuid.uuid4().hex[:8]}", "role": "operator", "region": "510502"},
        )
        for _ in range(2)
    ]
    valid = [admin_key, *(t.json()["api_key"] for t in tenants)]
    monkeypatch.setattr(principal_module, "VALID_KEYS_REMEMBERED", 2)
    keys = Authenticator(stack.gateway.state.sessions, ttl=60)
    before = lookups.started  # the admin's requests above were looked up too
    for key in valid:
        assert await keys.principal(key) is not None
    assert lookups.started - before == 3
    for key in valid[1:]:
        assert await keys.principal(key) is not None
    assert lookups.started - before == 3  # the two newest are still remembered
    assert await keys.principal(valid[0]) is not None
    assert lookups.started - before == 4
