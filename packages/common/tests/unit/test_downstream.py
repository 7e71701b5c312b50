"""The client every service uses for its downstream calls."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from subsidy_common.downstream import downstream_client


async def _cookie_setter(request: web.Request) -> web.Response:
    response = web.json_response({"cookie": request.headers.get("Cookie")})
    response.set_cookie("session", "tenant-a")
    return response


@pytest.fixture
async def downstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", _cookie_setter)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_a_cookie_one_answer_set_never_rides_on_the_next_request(downstream: str) -> None:
    """One client serves every tenant: what a downstream sets for one must not reach another."""
    client = downstream_client(downstream)
    try:
        first = await client.get("/")
        assert first.headers["set-cookie"].startswith("session=tenant-a")
        second = await client.get("/")
        assert second.json() == {"cookie": None}
        assert not client.cookies
    finally:
        await client.aclose()
