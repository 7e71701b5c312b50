"""The client every service uses for its downstream calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from aiohttp import web
from subsidy_common.downstream import downstream_client, refused
from subsidy_common.logs import request_id_var
from subsidy_common.middleware import REQUEST_ID_HEADER
from testkit import free_port


async def _cookie_setter(request: web.Request) -> web.Response:
    response = web.json_response({"cookie": request.headers.get("Cookie")})
    response.set_cookie("session", "tenant-a")
    return response


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "body": (await request.read()).decode(),
        }
    )


async def _hang(request: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.Response()


@pytest.fixture
async def downstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", _cookie_setter)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/hang", _hang)
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


async def test_a_relayed_request_keeps_no_cookie_either(downstream: str) -> None:
    client = downstream_client(downstream)
    try:
        first = await client.relay("GET", "/")
        assert first.headers["set-cookie"].startswith("session=tenant-a")
        second = await client.relay("GET", "/")
        assert orjson.loads(second.content) == {"cookie": None}
    finally:
        await client.aclose()


async def test_a_relayed_request_carries_its_body_query_headers_and_request_id(
    downstream: str,
) -> None:
    client = downstream_client(downstream)
    token = request_id_var.set("req-42")
    try:
        answer = await client.relay(
            "POST", "/echo", params={"q": "a b"}, content=b'{"x": 1}',
            headers={"Content-Type": "application/json", "X-Tenant-ID": "t1"},
        )  # fmt: skip
    finally:
        request_id_var.reset(token)
        await client.aclose()
    assert answer.status_code == 200
    echoed = orjson.loads(answer.content)
    assert (echoed["method"], echoed["path"], echoed["query"]) == ("POST", "/echo", {"q": "a b"})
    assert echoed["body"] == '{"x": 1}'
    assert echoed["headers"]["X-Tenant-ID"] == "t1"
    assert echoed["headers"][REQUEST_ID_HEADER] == "req-42"


async def test_a_relay_fails_as_the_httpx_path_does(downstream: str) -> None:
    """A service that hangs times out; one that is not there is refused."""
    client = downstream_client(downstream, timeout=0.3)
    try:
        with pytest.raises(httpx.TimeoutException) as hung:
            await client.relay("GET", "/hang")
        assert not refused(hung.value)
    finally:
        await client.aclose()
    nowhere = downstream_client(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(httpx.TransportError) as gone:
            await nowhere.relay("GET", "/")
        assert refused(gone.value)
    finally:
        await nowhere.aclose()
