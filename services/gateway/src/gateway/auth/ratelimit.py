"""Per-tenant rate limits: a sliding window per tenant, counted in memory or in Redis.

The sliding-window counter keeps two counters per tenant (this window and the last, weighted by
how much of the last still overlaps), not one entry per request as a moving window does: constant
memory and a few operations per request, in memory and in Redis alike.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from prometheus_client import CollectorRegistry, Counter
from subsidy_common.problems import DomainError, problem_type

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

# Redis answers in well under a millisecond when healthy; a slow one must not slow every request.
REDIS_TIMEOUT_SECONDS = 0.5
# After Redis fails, requests go unlimited for this long instead of each waiting on a timeout.
OUTAGE_PAUSE_SECONDS = 5.0
# How long the store's count of a tenant's window stands for the RateLimit-* headers, counted
# down locally meanwhile. Reading it cost a second round trip to Redis on every request: about
# 180 µs of the gateway's CPU here (bench/RESULTS.md, eighth series).
STATS_MAX_AGE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Quota:
    """Where a tenant stands in its window after a request."""

    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """The three RateLimit-* response headers that most clients read."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimited(DomainError):
    """The tenant made more requests than its limit allows in the current window."""

    type = problem_type("rate-limited")
    title = "Too Many Requests"
    status = 429

    def __init__(self, quota: Quota, limit: str) -> None:
        super().__init__(
            f"Rate limit of {limit} exceeded; retry in {quota.reset_seconds} s.",
            headers={"Retry-After": str(quota.reset_seconds), **quota.headers()},
        )


@dataclass(slots=True)
class _Window:
    """What the store last said of a tenant's window, and the hits let through since."""

    read_at: float  # monotonic
    remaining: int
    reset_at: float  # epoch seconds
    hits_since: int = 0


class TenantRateLimiter:
    """Counts each tenant's requests in a sliding window shared by every replica using the store.

    Every request is counted in the store, which alone decides whether it is let through. The
    RateLimit-* headers come from the store's count of the window, read again once it is a
    second old and after every refusal; in between, this replica counts its own requests down
    from it. Another replica's requests show in the headers within that second.

    When the store (Redis) fails, requests are let through and the failure is logged and
    counted: the limit protects capacity, it grants no rights, and a Redis outage must not stop
    county systems from working.
    """

    def __init__(
        self,
        item: RateLimitItem,
        storage: Storage,
        *,
        errors: Counter,
        pool: redis.asyncio.ConnectionPool | None = None,
    ) -> None:
        self._item = item
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._errors = errors
        self._pool = pool
        self._paused_until = 0.0
        self._windows: dict[str, _Window] = {}

    async def hit(self, tenant_id: str) -> Quota | None:
        """Count one request; raise RateLimited when over the limit, None if the store is down."""
        now = time.monotonic()
        if now < self._paused_until:
            return None
        try:
            allowed = await self._strategy.hit(self._item, "tenant", tenant_id)
            window = self._windows.get(tenant_id)
            if allowed and window is not None and now - window.read_at < STATS_MAX_AGE_SECONDS:
                window.hits_since += 1
            else:
                stats = await self._strategy.get_window_stats(self._item, "tenant", tenant_id)
                reset_at = stats.reset_time
                if reset_at <= time.time():
                    # A window just begun: Redis keeps its count for twice the window, and
                    # limits reads the time left, modulo the window, as 0 rather than all of it.
                    reset_at = time.time() + self._item.get_expiry()
                window = _Window(now, stats.remaining, reset_at)
                if len(self._windows) > 10_000:
                    self._windows.clear()
                self._windows[tenant_id] = window
        except (StorageError, OSError, TimeoutError) as exc:
            self._paused_until = time.monotonic() + OUTAGE_PAUSE_SECONDS
            self._errors.inc()
            log.warning(
                "rate-limit store unavailable, not limiting for %.0f s: %s",
                OUTAGE_PAUSE_SECONDS,
                exc,
            )
            return None
        reset = max(1, math.ceil(window.reset_at - time.time()))
        quota = Quota(self._item.amount, max(0, window.remaining - window.hits_since), reset)
        if not allowed:
            raise RateLimited(quota, str(self._item))
        return quota

    async def aclose(self) -> None:
        """Close the Redis connections, if any."""
        if self._pool is not None:
            await self._pool.aclose()


def store_errors_counter(registry: CollectorRegistry) -> Counter:
    """The counter of requests let through because the rate-limit store failed."""
    return Counter(
        "gateway_rate_limit_store_errors",
        "Requests let through unlimited because the rate-limit store failed.",
        registry=registry,
    )


def build_rate_limiter(
    rate_limit: str, redis_url: str | None, *, key_prefix: str, errors: Counter
) -> TenantRateLimiter:
    """A limiter counting in Redis when a URL is given (shared by replicas), else in memory."""
    item = parse(rate_limit)
    if redis_url is None:
        return TenantRateLimiter(item, MemoryStorage(), errors=errors)
    import redis.asyncio  # only with a Redis URL: a costly import the memory store does without

    plain = redis_url.removeprefix("async+")
    pool = redis.asyncio.ConnectionPool.from_url(
        plain,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    storage = RedisStorage(
        f"async+{plain}",
        wrap_exceptions=True,
        implementation="redispy",
        key_prefix=key_prefix,
        # limits documents `connection_pool` but types its options as scalars; the pool is ours
        # so that shutdown can close it.
        connection_pool=pool,  # type: ignore[arg-type]
    )
    return TenantRateLimiter(item, storage, errors=errors, pool=pool)
