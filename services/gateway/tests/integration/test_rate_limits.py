"""Per-tenant rate limits: in memory for one gateway, in Redis for replicas sharing a budget."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio
from prometheus_client.parser import text_string_to_metric_families

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def new_operator(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/v1/admin/tenants",
        json={"name": f"rl-{uuid.uuid4().hex[:8]}", "role": "operator", "region": "510502"},
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own in the Redis the suite requires; removed afterwards."""
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.fail(f"Redis is required at {REDIS_URL} (set TEST_REDIS_URL): {exc}")
    prefix = f"test-gateway-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class TestInMemory:
    async def test_over_the_limit_is_429_problem_with_retry_after(
        self, another_gateway: Callable[..., Any], client_for: Callable[..., httpx.AsyncClient]
    ) -> None:
        async with another_gateway(rate_limit="3/minute") as app, client_for(app) as admin:
            answers = [await admin.get("/v1/regions") for _ in range(3)]
            refused = await admin.get("/v1/regions")
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
        assert all(a.headers["ratelimit-limit"] == "3" for a in answers)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        body = refused.json()
        assert body["status"] == 429
        assert body["type"].endswith("/rate-limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.headers["ratelimit-reset"] == refused.headers["retry-after"]

    async def test_each_tenant_has_its_own_budget(
        self, another_gateway: Callable[..., Any], client_for: Callable[..., httpx.AsyncClient]
    ) -> None:
        async with another_gateway(rate_limit="3/minute") as app, client_for(app) as admin:
            operator_key = await new_operator(admin)
            for _ in range(2):
                assert (await admin.get("/v1/matters")).status_code == 200
            assert (await admin.get("/v1/matters")).status_code == 429
            async with client_for(app, operator_key) as operator:
                statuses = [(await operator.get("/v1/regions")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]

    async def test_every_authenticated_route_counts_admin_routes_included(
        self, another_gateway: Callable[..., Any], client_for: Callable[..., httpx.AsyncClient]
    ) -> None:
        async with another_gateway(rate_limit="2/minute") as app, client_for(app) as admin:
            assert (await admin.get("/v1/admin/tenants")).status_code == 200
            assert (await admin.get("/v1/policies")).status_code == 200
            assert (await admin.get("/v1/admin/tenants")).status_code == 429
            assert (await admin.post("/v1/calculations", json={})).status_code == 429

    async def test_health_metrics_and_refused_keys_are_not_limited(
        self, another_gateway: Callable[..., Any], client_for: Callable[..., httpx.AsyncClient]
    ) -> None:
        async with another_gateway(rate_limit="1/minute") as app:
            async with client_for(app, None) as anonymous:
                for path in ("/healthz", "/readyz", "/openapi.json") * 3:
                    assert (await anonymous.get(path)).status_code == 200, path
                for _ in range(5):
                    assert (await anonymous.get("/v1/regions")).status_code == 401
            async with client_for(app) as admin:
                assert (await admin.get("/v1/regions")).status_code == 200
                assert (await admin.get("/v1/regions")).status_code == 429
                # A scrape goes on when its tenant is over the limit, and does not count.
                scrapes = [await admin.get("/metrics") for _ in range(3)]
        assert [s.status_code for s in scrapes] == [200, 200, 200]
        assert "ratelimit-remaining" not in scrapes[0].headers
        text = scrapes[0].text
        assert metric(text, "http_requests_total", route="/v1/regions", status="429") == 1


class TestInRedis:
    async def test_replicas_share_one_budget(
        self,
        redis_prefix: str,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
        database_factory: Callable[[str], Awaitable[str]],
    ) -> None:
        database = await database_factory("gateway_replicas")
        settings = {
            "database_url": database,
            "rate_limit": "4/minute",
            "redis_url": REDIS_URL,
            "rate_limit_prefix": redis_prefix,
        }
        async with (
            another_gateway(**settings) as one,
            another_gateway(**settings) as two,
            client_for(one) as first,
            client_for(two) as second,
        ):
            statuses = [
                (await client.get("/v1/regions")).status_code
                for client in (first, second, first, second, first, second)
            ]
        assert statuses == [200, 200, 200, 200, 429, 429]

    async def test_keys_are_namespaced_by_the_prefix(
        self,
        redis_prefix: str,
        another_gateway: Callable[..., Any],
        client_for: Callable[..., httpx.AsyncClient],
    ) -> None:
        async with (
            another_gateway(
                rate_limit="5/minute", redis_url=REDIS_URL, rate_limit_prefix=redis_prefix
            ) as app,
            client_for(app) as admin,
        ):
            assert (await admin.get("/v1/regions")).status_code == 200
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{redis_prefix}:*")]
        finally:
            await client.aclose()
        assert len(keys) == 1

    async def test_redis_down_lets_requests_through_and_counts_it(
        self, another_gateway: Callable[..., Any], client_for: Callable[..., httpx.AsyncClient]
    ) -> None:
        async with (
            another_gateway(rate_limit="1/minute", redis_url="redis://127.0.0.1:9/0") as app,
            client_for(app) as admin,
        ):
            statuses = [(await admin.get("/v1/regions")).status_code for _ in range(3)]
            text = (await admin.get("/metrics")).text
        assert statuses == [200, 200, 200]
        assert metric(text, "gateway_rate_limit_store_errors_total") == 1
