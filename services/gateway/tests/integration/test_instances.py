"""A service at several instances: each request to the one with the fewest in flight."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from gateway.clients.downstream import FAILED_SECONDS, Downstream
from gateway.config import Settings
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from subsidy_common.problems import ServiceUnavailable
from testkit import free_port, live_server, never_answering


class Instance:
    """A service instance that says who it is, and can hold requests until told to let go."""

    def __init__(self, name: str, arrived: asyncio.Event | None = None) -> None:
        self.name = name
        self.held = 0
        self.arrived = arrived or asyncio.Event()
        self.release = asyncio.Event()
        self.app = FastAPI()

        @self.app.get("/who")
        async def who() -> Response:
            return Response(self.name.encode())

        @self.app.get("/hold")
        async def hold() -> Response:
            self.held += 1
            self.arrived.set()
            await self.release.wait()
            return Response(self.name.encode())

        @self.app.post("/stream")
        async def stream(request: Request) -> StreamingResponse:
            body = await request.body()

            async def chunks() -> AsyncIterator[bytes]:
                for line in body.split(b"\n"):
                    yield line + b"\n"
                    await asyncio.sleep(0)

            return StreamingResponse(chunks(), media_type="application/x-ndjson")

        @self.app.post("/cut")
        async def cut() -> StreamingResponse:
            async def chunks() -> AsyncIterator[bytes]:
                yield b"1\n"
                raise ConnectionAbortedError("the instance went away")

            return StreamingResponse(chunks(), media_type="application/x-ndjson")


def downstream(*urls: str) -> Downstream:
    return Downstream("calculator", list(urls), timeout=5, connect_timeout=1)


async def answers(service: Downstream, count: int, path: str = "/who") -> list[str]:
    return [(await service.forward("GET", path)).body.decode() for _ in range(count)]


async def test_instances_take_turns_when_none_is_busy() -> None:
    a, b = Instance("a"), Instance("b")
    async with live_server(a.app) as url_a, live_server(b.app) as url_b:
        service = downstream(url_a, url_b)
        try:
            seen = await answers(service, 6)
        finally:
            await service.aclose()
    assert sorted(seen) == ["a", "a", "a", "b", "b", "b"]
    assert seen[0::2] in (["a"] * 3, ["b"] * 3)


async def test_a_long_request_sends_the_others_to_the_idle_instance() -> None:
    arrived = asyncio.Event()
    a, b = Instance("a", arrived), Instance("b", arrived)
    async with live_server(a.app) as url_a, live_server(b.app) as url_b:
        service = downstream(url_a, url_b)
        try:
            held = asyncio.create_task(service.forward("GET", "/hold"))
            await arrived.wait()
            busy = a if a.held else b
            idle = b if busy is a else a
            seen = await answers(service, 5)
            assert seen == [idle.name] * 5
            assert [i.in_flight for i in service.instances] == [
                1 if i.url == (url_a if busy is a else url_b) else 0 for i in service.instances
            ]
            busy.release.set()
            assert (await held).body.decode() == busy.name
            assert [i.in_flight for i in service.instances] == [0, 0]
        finally:
            a.release.set()
            b.release.set()
            await service.aclose()


async def test_two_streams_go_to_two_instances_and_count_until_read() -> None:
    a, b = Instance("a"), Instance("b")

    async def body() -> AsyncIterator[bytes]:
        yield b"1\n2\n3"

    async with live_server(a.app) as url_a, live_server(b.app) as url_b:
        service = downstream(url_a, url_b)
        try:
            first = await service.stream("POST", "/stream", body(), {})
            second = await service.stream("POST", "/stream", body(), {})
            assert [i.in_flight for i in service.instances] == [1, 1]
            read = b"".join([chunk async for chunk in first.body_iterator])  # type: ignore[misc]
            assert read == b"1\n2\n3\n"
            assert first.background is not None
            await first.background()
            assert sorted(i.in_flight for i in service.instances) == [0, 1]
            # Closed unread: the count is given back once, not twice.
            assert second.background is not None
            await second.background()
            await second.background()
            assert [i.in_flight for i in service.instances] == [0, 0]
        finally:
            await service.aclose()


@asynccontextmanager
async def dead_then_alive() -> AsyncIterator[tuple[Downstream, str, str]]:
    """A service whose first instance refuses connections and whose second answers "b"."""
    b = Instance("b")
    dead = f"http://127.0.0.1:{free_port()}"
    async with live_server(b.app) as alive:
        service = downstream(dead, alive)
        try:
            yield service, dead, alive
        finally:
            await service.aclose()


@pytest.mark.parametrize("call", ["forward", "request", "stream"])
async def test_an_instance_that_refuses_connections_is_passed_over(call: str) -> None:
    async with dead_then_alive() as (service, _, _):
        # A new service tries its first instance first: the dead one.
        if call == "forward":
            answer = (await service.forward("GET", "/who")).body
        elif call == "request":
            answer = (await service.request("GET", "/who")).content
        else:

            async def body() -> AsyncIterator[bytes]:
                yield b"x\ny"

            streamed = await service.stream("POST", "/stream", body(), {})
            answer = b"".join([c async for c in streamed.body_iterator])  # type: ignore[misc]
            assert streamed.background is not None
            await streamed.background()
        assert answer == (b"x\ny\n" if call == "stream" else b"b")
        assert service.instances[0].failed_at > -math.inf
        assert [i.in_flight for i in service.instances] == [0, 0]


async def test_an_instance_that_refused_is_tried_last_for_a_while() -> None:
    async with dead_then_alive() as (service, dead, alive):
        await service.forward("GET", "/who")
        orders = [[i.url for i in service._candidates()] for _ in range(4)]
        assert orders == [[alive, dead]] * 4
        for instance in service.instances:  # as if those seconds had passed
            instance.failed_at -= FAILED_SECONDS + 1
        firsts = {service._candidates()[0].url for _ in range(2)}
        assert firsts == {alive, dead}


async def test_an_instance_that_cut_an_answer_is_tried_last_for_a_while() -> None:
    a, b = Instance("a"), Instance("b")
    async with live_server(a.app) as url_a, live_server(b.app) as url_b:
        service = downstream(url_a, url_b)

        async def read_to_the_end() -> None:
            async with service.streamed("POST", "/cut", content=b"", headers={}) as answer:
                async for _ in answer.aiter_raw():
                    pass

        try:
            with pytest.raises(httpx.TransportError):
                await read_to_the_end()
            cut = next(i for i in service.instances if i.failed_at > -math.inf)
            assert [i.in_flight for i in service.instances] == [0, 0]
            orders = [[i.url for i in service._candidates()] for _ in range(4)]
            assert all(order[-1] == cut.url for order in orders)
        finally:
            await service.aclose()


async def test_an_instance_that_hung_up_on_a_request_is_503_then_tried_last() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    hung_up = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, live_server(Instance("b").app) as alive:
        service = downstream(hung_up, alive)
        try:
            # The request may have been read: not sent again elsewhere, but answered at once.
            with pytest.raises(ServiceUnavailable):
                await service.forward("GET", "/who")
            assert await answers(service, 4) == ["b"] * 4
        finally:
            await service.aclose()


async def test_every_instance_refusing_is_503() -> None:
    service = downstream(f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(ServiceUnavailable):
            await service.forward("GET", "/who")
    finally:
        await service.aclose()
    assert [i.in_flight for i in service.instances] == [0, 0]


def test_the_calculator_url_may_list_instances() -> None:
    settings = Settings(calculator_url="http://127.0.0.1:8002, http://127.0.0.1:8003")
    assert settings.calculator_urls == ["http://127.0.0.1:8002", "http://127.0.0.1:8003"]
    assert Settings().calculator_urls == ["http://127.0.0.1:8002"]
    assert Settings(calculator_url="http://calculator").calculator_urls == ["http://calculator"]


@pytest.mark.parametrize(
    "value", ["", "http://a,", "127.0.0.1:8002", "http://a, ftp://b", "http://", "https://a,,"]
)
def test_a_calculator_url_that_is_not_a_url_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="calculator_url"):
        Settings(calculator_url=value)


async def test_readiness_names_the_instance_that_is_not_ready(
    stack: Any, another_gateway: Callable[..., Any], client_for: Callable[..., httpx.AsyncClient]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with (
        never_answering() as hanging,
        another_gateway(
            calculator_url=",".join([stack.calculator_url, hanging.url, dead]),
            downstream_timeout=0.5,
        ) as app,
        client_for(app, None) as client,
    ):
        response = await client.get("/readyz")
    calculator = response.json()["checks"]["calculator"]
    assert calculator["status"] == "unavailable"
    hung, refused = calculator["error"].split("; ")
    assert hung == "instance 2 of 3: ReadTimeout"
    assert refused.startswith("instance 3 of 3: Connect")


async def test_a_hanging_downstream_is_reported_as_a_refusing_one_is(
    stack: Any, another_gateway: Callable[..., Any], client_for: Callable[..., httpx.AsyncClient]
) -> None:
    async with (
        never_answering() as hanging,
        another_gateway(calculator_url=hanging.url, downstream_timeout=10) as app,
        client_for(app, None) as client,
    ):
        response = await client.get("/readyz")
    assert response.status_code == 200  # the gateway itself can answer, a 503 included
    calculator = response.json()["checks"]["calculator"]
    assert (calculator["status"], calculator["error"]) == ("unavailable", "TimeoutError")
