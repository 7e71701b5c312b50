"""Key lookups: one database lookup per key at a time, whatever the number of requests waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from gateway.auth import principal as principal_module
from gateway.auth.principal import Authenticator


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
    gated = GatedLookups(principal_module.repository.active_key)
    monkeypatch.setattr(principal_module.repository, "active_key", gated)
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
    assert {p.tenant_id for p in found if p is not None} == {found[0].tenant_id}
    assert None not in found
    # The answer expired at once (ttl 0): the next request looks the key up again.
    await keys.principal(admin_key)
    assert lookups.started == 2


async def test_an_unknown_key_is_looked_up_once_too(stack: Any, lookups: GatedLookups) -> None:
    keys = Authenticator(stack.gateway.state.sessions, ttl=0)
    waiting = [asyncio.create_task(keys.principal("sk_nobody-issued-this")) for _ in range(10)]
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
