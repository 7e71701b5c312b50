"""The limiter asks the store whether to let each request through, and reads the window's count
for the RateLimit-* headers only when it is a second old or after a refusal."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.auth import ratelimit
from gateway.auth.ratelimit import RateLimited, TenantRateLimiter
from limits import parse
from limits.aio.storage import MemoryStorage
from prometheus_client import CollectorRegistry


def limiter(limit: str) -> tuple[TenantRateLimiter, list[str]]:
    built = TenantRateLimiter(
        parse(limit), MemoryStorage(), errors=ratelimit.store_errors_counter(CollectorRegistry())
    )
    reads: list[str] = []
    strategy: Any = built._strategy
    original = strategy.get_window_stats

    async def counted(item: Any, *identifiers: str) -> Any:
        reads.append(identifiers[-1])
        return await original(item, *identifiers)

    strategy.get_window_stats = counted
    return built, reads


async def test_the_count_is_read_once_then_counted_down() -> None:
    limit, reads = limiter("5/minute")
    quotas = [await limit.hit("t1") for _ in range(5)]
    assert [q.remaining for q in quotas if q is not None] == [4, 3, 2, 1, 0]
    assert reads == ["t1"]
    with pytest.raises(RateLimited) as refused:
        await limit.hit("t1")
    assert reads == ["t1", "t1"]
    assert refused.value.headers["RateLimit-Remaining"] == "0"


async def test_each_tenant_has_its_own_count() -> None:
    limit, reads = limiter("5/minute")
    first = await limit.hit("t1")
    other = await limit.hit("t2")
    again = await limit.hit("t1")
    assert [q.remaining for q in (first, other, again) if q is not None] == [4, 4, 3]
    assert reads == ["t1", "t2"]


async def test_a_count_older_than_a_second_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    limit, reads = limiter("5/minute")
    monkeypatch.setattr(ratelimit, "STATS_MAX_AGE_SECONDS", 0.0)
    for _ in range(3):
        await limit.hit("t1")
    assert reads == ["t1", "t1", "t1"]


class JustBegun(MemoryStorage):
    """A store reading a window as Redis does in the millisecond its first request is counted:
    its count kept for twice the window, all of which is left."""

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        previous, _, current, _ = await super().get_sliding_window(key, expiry)
        return previous, 0.0, current, 2.0 * expiry


async def test_a_window_just_begun_resets_at_its_end() -> None:
    limit = TenantRateLimiter(
        parse("5/minute"), JustBegun(), errors=ratelimit.store_errors_counter(CollectorRegistry())
    )
    quota = await limit.hit("t1")
    assert quota is not None
    assert quota.reset_seconds == 60  # not 1
