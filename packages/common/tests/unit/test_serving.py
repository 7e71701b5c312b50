"""The guarded protocol answers a client that sends its request too slowly or too large, and only
such a client: requests sent whole, bodies sent slowly but steadily, and bodies the service
itself holds back are served as before. The rest of a body the service answered without
reading does not hold the connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from subsidy_common import serving
from subsidy_common.serving import GuardedHttpToolsProtocol


async def echo(request: Request) -> PlainTextResponse:
    if request.query_params.get("hold"):  # a service that reads the body only later
        await asyncio.sleep(float(request.query_params["hold"]))
    body = await request.body()
    return PlainTextResponse(f"{len(body)}")


async def refuse(_: Request) -> PlainTextResponse:
    """Answers without reading the body, as a route refusing a caller without a key does."""
    return PlainTextResponse("no key", status_code=401)


APP = Starlette(
    routes=[Route("/", echo, methods=["GET", "POST"]), Route("/refuse", refuse, methods=["POST"])]
)


@pytest.fixture(autouse=True)
def short_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "HEAD_SECONDS", 0.4)
    monkeypatch.setattr(serving, "BODY_IDLE_SECONDS", 0.4)
    monkeypatch.setattr(serving, "HEAD_BYTES", 2048)
    monkeypatch.setattr(serving, "LINGER_SECONDS", 0.6)
    monkeypatch.setattr(serving, "LINGER_IDLE_SECONDS", 0.3)


@asynccontextmanager
async def server(keep_alive: float = 5) -> AsyncIterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        APP,
        host="127.0.0.1",
        port=port,
        http=GuardedHttpToolsProtocol,
        log_config=None,
        timeout_keep_alive=keep_alive,
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    while not served.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        served.should_exit = True
        await task


async def exchange(port: int, *parts: bytes, pause: float = 0.0, wait: float = 2.0) -> bytes:
    """Send the parts, `pause` seconds apart, and read until the server closes or `wait`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i, part in enumerate(parts):
            if i and pause:
                await asyncio.sleep(pause)
            writer.write(part)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), wait)
    except TimeoutError:
        return b"<still open>"
    finally:
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed() -> None:
    async with server() as port:
        assert await exchange(port) == b""


async def test_a_head_that_does_not_come_whole_is_408() -> None:
    async with server() as port:
        answer = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b'"status": 408' in answer


async def test_a_head_sent_a_byte_at_a_time_is_timed_from_its_start() -> None:
    async with server() as port:
        loop = asyncio.get_running_loop()
        started = loop.time()
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a"
        answer = await exchange(port, *(head[i : i + 1] for i in range(10)), pause=0.03)
        took = loop.time() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert took < 0.4 + 0.27  # not 0.4 s after its last byte


async def test_a_head_too_large_is_431() -> None:
    async with server() as port:
        # One header without end, read after read; and many headers, each whole.
        endless = (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", *[b"a" * 1024] * 3)
        answer = await exchange(port, *endless, pause=0.05)
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        many = b"".join(b"X-%d: %s\r\n" % (i, b"b" * 100) for i in range(30))
        answer = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many)
        assert answer.startswith(b"HTTP/1.1 431 ")


async def test_pipelined_requests_count_one_head_each() -> None:
    """800 heads of 245 bytes in one write are 800 answers, not one head of 196 KB."""
    one = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    last = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with server() as port:
        answer = await exchange(port, one * 800 + last, wait=10)
    assert answer.count(b"HTTP/1.1 200 OK") == 801


async def test_an_empty_line_after_a_request_does_not_hold_the_connection() -> None:
    async with server() as port:
        answer = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\r\n", pause=0.1)
    assert answer.startswith(b"HTTP/1.1 200 OK")  # then closed, not held open


async def test_a_body_that_stops_is_408() -> None:
    async with server() as port:
        answer = await exchange(
            port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabcde"
        )
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_requests_sent_whole_slowly_or_held_back_are_served() -> None:
    whole = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    close = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with server() as port:
        # Two requests on one connection, the second after the first's head deadline.
        answer = await exchange(port, whole, close, pause=0.6)
        assert answer.count(b"HTTP/1.1 200 OK") == 2
        # A body arriving steadily, more slowly in all than its idle bound.
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
        answer = await exchange(port, head, *[b"x"] * 10, pause=0.1)
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert answer.endswith(b"10")
        # A large body the service reads only after its idle bound: nothing is the client's fault.
        body = b"y" * 1_000_000
        head = (
            b"POST /?hold=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        answer = await exchange(port, head + body, wait=5)
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert answer.endswith(b"1000000")


async def test_a_client_waiting_for_100_continue_is_not_timed_out() -> None:
    """curl sends Expect: 100-continue before a large body and waits for leave to send it; the
    service gives it only when it first asks for the body."""
    async with server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /?hold=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            leave = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
            assert leave.startswith(b"HTTP/1.1 100 Continue")
            writer.write(b"hello")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 3)
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"5")


async def test_a_head_waiting_behind_a_slow_answer_is_not_timed_out() -> None:
    """A pipelined head's clock starts once the answers before it are sent."""
    slow = b"GET /?hold=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    async with server() as port:
        answer = await exchange(
            port,
            slow + b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"Connection: close\r\n\r\n",
            pause=0.8,
            wait=5,
        )
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert b"408" not in answer


async def test_the_rest_of_a_body_answered_early_does_not_hold_the_connection() -> None:
    """uvicorn's protocol waited for the end of a body it had answered for ever."""
    head = b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    async with server() as port:
        loop = asyncio.get_running_loop()
        # Nothing more comes: closed once it has been quiet for the idle bound.
        answer = await exchange(port, head + b"abc")
        assert answer.startswith(b"HTTP/1.1 401 ")
        assert answer.endswith(b"no key")
        # It keeps coming, a byte at a time: closed at the bound on lingering in all.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = loop.time()
        try:
            writer.write(head)
            while not reader.at_eof() and loop.time() - started < 3:
                writer.write(b"x")
                await asyncio.sleep(0.1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(4096), 0.01)
        except ConnectionError:
            pass
        finally:
            writer.close()
        assert loop.time() - started < 1.5


async def test_a_body_finished_after_an_early_answer_leaves_the_connection_serving() -> None:
    head = b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
    then = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with server() as port:
        answer = await exchange(port, head + b"abc", b"defghij", then, pause=0.15)
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert answer.count(b"HTTP/1.1 200 OK") == 1


async def test_a_request_after_a_lingered_body_is_not_cut_by_the_keep_alive_timer() -> None:
    """The body's end armed the timer; the next request came in the same read and outlasted
    it, and its answer was lost."""
    head = b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
    slow = b"GET /?hold=0.6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with server(keep_alive=0.2) as port:
        answer = await exchange(port, head + b"abc", b"defghij" + slow, pause=0.1, wait=3)
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert answer.count(b"HTTP/1.1 200 OK") == 1, answer
