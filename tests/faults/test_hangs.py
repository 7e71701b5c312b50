"""A registry that hangs (takes the connection, never answers) behind a calculator: it keeps
serving on its last snapshot, says which version, and its readiness reports the staleness
(reliability.md, "Faults"). Unlike a stopped registry, nothing here fails at once: only the
calculator's own timeout on the call tells it the registry is gone.

In process, for speed: the registry and the calculator run under uvicorn on loopback, with a
`TcpProxy` between them that is switched from forwarding to hanging.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx
from calculator.config import Settings as CalculatorSettings
from calculator.main import create_app as create_calculator
from faults.tcp_proxy import TcpProxy
from registry.config import Settings as RegistrySettings
from registry.main import create_app as create_registry
from testkit import live_server, running

REGISTRY_TIMEOUT = 0.5  # the calculator's registry_timeout here
REFRESH_SECONDS = 0.1
PROMPT = 0.3  # what serving from the held snapshot may take, well under the timeout
REQUEST = {
    "applicant": {"id": "91510500MA62B8XY4F", "kind": "enterprise", "region": "510502"},
    "events": [{"matter": "patent.invention.granted", "date": "2016-05-10", "subject": "ZL1"}],
}


async def timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


async def test_a_hanging_registry_leaves_the_calculator_serving_its_last_snapshot(
    database_factory: Callable[[str], Awaitable[str]],
) -> None:
    registry = create_registry(RegistrySettings(database_url=await database_factory("registry")))
    calculator_db = await database_factory("calculator")
    async with asyncio.timeout(30), live_server(registry) as registry_url:
        target = urlsplit(registry_url)
        proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 80).start()
        calculator = create_calculator(
            CalculatorSettings(
                database_url=calculator_db,
                registry_url=f"http://{proxy.host}:{proxy.port}",
                registry_timeout=REGISTRY_TIMEOUT,
                snapshot_refresh_seconds=REFRESH_SECONDS,
            )
        )
        transport = httpx.ASGITransport(app=calculator)
        try:
            async with (
                running(calculator),
                httpx.AsyncClient(transport=transport, base_url="http://c") as client,
            ):
                await _hanging_registry(client, proxy)
        finally:
            await proxy.close()


async def _hanging_registry(client: httpx.AsyncClient, proxy: TcpProxy) -> None:
    ready = (await client.get("/readyz")).json()["checks"]["registry_snapshot"]
    assert ready["registry_reachable"] is True, ready
    version = ready["registry_version"]
    before = await client.post("/v1/calculations", json=REQUEST)
    assert before.status_code == 200, before.text

    await proxy.hang()
    hung_at = time.monotonic()
    # At once, and all along: calculations from the held snapshot, without waiting on the
    # registry.
    during, seconds = await timed(client.post("/v1/calculations", json=REQUEST))
    assert during.status_code == 200, during.text
    assert seconds < PROMPT, seconds
    assert during.json()["registry_version"] == version
    assert during.json()["results"] == before.json()["results"]

    # A revalidation waits out the timeout, then readiness names the failure and the age.
    await asyncio.sleep(REGISTRY_TIMEOUT + 4 * REFRESH_SECONDS)
    assert proxy.held >= 1, "the calculator never called the hanging registry"
    response, seconds = await timed(client.get("/readyz"))
    assert seconds < PROMPT, f"readiness waited on the registry: {seconds:.2f} s"
    assert response.status_code == 200, response.text  # serving, so still ready
    first = response.json()["checks"]["registry_snapshot"]
    assert first["registry_reachable"] is False, first
    assert "Timeout" in first["last_error"], first
    assert first["registry_version"] == version
    assert first["checked_seconds_ago"] >= time.monotonic() - hung_at - 0.2, first

    await asyncio.sleep(REGISTRY_TIMEOUT)
    later = (await client.get("/readyz")).json()["checks"]["registry_snapshot"]
    assert later["registry_reachable"] is False
    assert later["checked_seconds_ago"] >= first["checked_seconds_ago"] + REGISTRY_TIMEOUT - 0.1
    still, seconds = await timed(client.post("/v1/calculations", json=REQUEST))
    assert (still.status_code, still.json()["registry_version"]) == (200, version)
    assert seconds < PROMPT, seconds

    # Only what needs the registry now fails, within the timeout: a past registry is 503.
    past = REQUEST | {"registry_as_of": dt.datetime(2001, 1, 1, tzinfo=dt.UTC).isoformat()}
    refused, seconds = await timed(client.post("/v1/calculations", json=past))
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"]
    assert seconds < REGISTRY_TIMEOUT + 1.0, seconds

    # The registry answering again: the next revalidation says so, with nothing restarted.
    await proxy.restore()
    deadline = time.monotonic() + REGISTRY_TIMEOUT + 5
    while time.monotonic() < deadline:
        health = (await client.get("/readyz")).json()["checks"]["registry_snapshot"]
        if health["registry_reachable"]:
            break
        await asyncio.sleep(REFRESH_SECONDS)
    assert health["registry_reachable"] is True, health
    assert health["checked_seconds_ago"] < 1


async def test_a_database_that_hangs_is_503_with_retry_after_and_recovered_from(
    database_factory: Callable[[str], Awaitable[str]],
) -> None:
    """A PostgreSQL that accepts connections and never answers (a stalled server, a partition):
    the driver's connect times out, which had been answered 500 on every request that reads."""
    url = urlsplit(await database_factory("registry"))
    proxy = await TcpProxy(url.hostname or "127.0.0.1", url.port or 5432).start()
    through = url._replace(netloc=f"{url.username}@{proxy.host}:{proxy.port}").geturl()
    registry = create_registry(RegistrySettings(database_url=through))
    transport = httpx.ASGITransport(app=registry)
    try:
        async with (
            asyncio.timeout(60),
            running(registry),
            httpx.AsyncClient(transport=transport, base_url="http://r") as client,
        ):
            assert (await client.get("/v1/policies/luzhou-2015-33")).status_code == 200
            await proxy.hang()
            hung = await client.get("/v1/policies/luzhou-2015-33")
            assert hung.status_code == 503, hung.text
            assert hung.headers["content-type"] == "application/problem+json"
            assert hung.headers["retry-after"]
            await proxy.restore()
            assert (await client.get("/v1/policies/luzhou-2015-33")).status_code == 200
    finally:
        await proxy.close()
