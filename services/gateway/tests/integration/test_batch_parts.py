"""An NDJSON batch in parts: spread over the calculator's instances, answered in order, a part
whose instance fails answered by another."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import orjson
import pytest
from calculator.config import Settings as CalculatorSettings
from calculator.main import create_app as create_calculator
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import StreamingResponse
from testkit import free_port, live_server

NDJSON = {"Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson"}
PART_BYTES = 1024  # about four cases a part


def lines(case: Callable[..., dict[str, Any]], count: int) -> list[bytes]:
    """`count` cases, among them a line that is not JSON and a case with a bad identifier."""
    out = []
    for i in range(count):
        body = case()
        body["events"][0]["subject"] = f"S{i}"
        if i % 13 == 5:
            body["applicant"]["id"] = "not-an-id"
        out.append(b"{broken" if i % 17 == 9 else orjson.dumps(body))
    return out


def body_of(cases: list[bytes]) -> bytes:
    """The cases as NDJSON with blank lines between some, the last without its newline."""
    parts = []
    for i, line in enumerate(cases):
        parts.append(line + b"\n")
        if i % 7 == 3:
            parts.append(b"\n  \n")
    return b"".join(parts).rstrip(b"\n")


Clients = Callable[..., httpx.AsyncClient]


async def post(
    client_for: Clients, app: FastAPI, content: bytes | AsyncIterator[bytes]
) -> httpx.Response:
    async with client_for(app) as client:
        return await client.post("/v1/calculations/batch", content=content, headers=NDJSON)


async def streamed(content: bytes) -> AsyncIterator[bytes]:
    """The body in small writes, as a client streaming a file sends it."""
    for start in range(0, len(content), 700):
        yield content[start : start + 700]


def decisions(metrics: str) -> float:
    return sum(
        float(m.group(1))
        for m in re.finditer(r"^subsidy_decisions_total\{[^}]*\} (\S+)$", metrics, re.MULTILINE)
    )


async def test_a_batch_in_parts_answers_every_case_in_order(
    stack: Any,
    client_for: Clients,
    another_gateway: Callable[..., Any],
    case: Callable[..., dict[str, Any]],
    film: dict[str, Any],
) -> None:
    content = body_of(lines(case, 60))
    whole = await post(client_for, stack.gateway, content)
    async with another_gateway(batch_part_bytes=PART_BYTES) as gateway:
        in_parts = await post(client_for, gateway, streamed(content))
    assert in_parts.status_code == 200, in_parts.text
    answers = [orjson.loads(line) for line in in_parts.content.splitlines()]
    assert [a["case_index"] for a in answers] == list(range(60))
    problems = {a["case_index"]: a["status"] for a in answers if "results" not in a}
    assert problems == {5: 422, 9: 400, 18: 422, 26: 400, 31: 422, 43: 400, 44: 422, 57: 422}
    assert answers[5]["errors"][0]["loc"] == ["body", "applicant", "id"]
    assert [a["results"][0]["subject"] for a in answers if "results" in a][:3] == ["S0", "S1", "S2"]
    assert in_parts.content == whole.content


async def test_the_parts_are_spread_over_the_instances(
    stack: Any,
    client_for: Clients,
    another_gateway: Callable[..., Any],
    database_factory: Callable[[str], Awaitable[str]],
    case: Callable[..., dict[str, Any]],
    film: dict[str, Any],
) -> None:
    content = body_of(lines(case, 200))
    async with AsyncExitStack() as running:
        second = create_calculator(
            CalculatorSettings(
                database_url=await database_factory("calculator_second"),
                registry_url=stack.registry_url,
            )
        )
        second_url = await running.enter_async_context(live_server(second))
        urls = [stack.calculator_url, second_url]
        gateway = await running.enter_async_context(
            another_gateway(calculator_url=",".join(urls), batch_part_bytes=PART_BYTES)
        )
        async with httpx.AsyncClient() as plain:
            before = [decisions((await plain.get(f"{u}/metrics")).text) for u in urls]
            response = await post(client_for, gateway, content)
            after = [decisions((await plain.get(f"{u}/metrics")).text) for u in urls]
    assert response.status_code == 200, response.text
    answers = [orjson.loads(line) for line in response.content.splitlines()]
    assert [a["case_index"] for a in answers] == list(range(200))
    decided = [b - a for a, b in zip(before, after, strict=True)]
    valid = sum("results" in a for a in answers)
    assert sum(decided) == valid
    assert min(decided) > valid / 4, decided


async def answered_by(calculator_url: str, request: Request) -> httpx.Response:
    """The real calculator's answer to the part an instance was given."""
    passed = {
        k: v
        for k, v in request.headers.items()
        if k in ("content-type", "accept", "x-first-case-index", "x-scope-region")
    }
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{calculator_url}/v1/calculations/batch", content=await request.body(), headers=passed
        )


def cut_short(calculator_url: str, after: int) -> tuple[FastAPI, list[int]]:
    """An instance that passes a part to the real calculator and loses the connection after
    `after` of its answers; it records the first case of each part it was given."""
    app = FastAPI()
    given: list[int] = []

    @app.post("/v1/calculations/batch")
    async def batch(request: Request) -> StreamingResponse:
        given.append(int(request.headers["x-first-case-index"]))
        real = await answered_by(calculator_url, request)

        async def answers() -> AsyncIterator[bytes]:
            for line in real.content.splitlines(keepends=True)[:after]:
                yield line
            raise ConnectionAbortedError("the instance went away")

        return StreamingResponse(answers(), media_type="application/x-ndjson")

    return app, given


async def test_a_part_whose_instance_fails_is_answered_by_another(
    stack: Any,
    client_for: Clients,
    another_gateway: Callable[..., Any],
    case: Callable[..., dict[str, Any]],
    film: dict[str, Any],
) -> None:
    content = body_of(lines(case, 60))
    whole = await post(client_for, stack.gateway, content)
    failing, given = cut_short(stack.calculator_url, after=2)
    async with AsyncExitStack() as running:
        failing_url = await running.enter_async_context(live_server(failing))
        gateway = await running.enter_async_context(
            another_gateway(
                calculator_url=f"{failing_url},{stack.calculator_url}",
                batch_part_bytes=PART_BYTES,
            )
        )
        response = await post(client_for, gateway, content)
    assert given, "the failing instance was never asked"
    assert response.status_code == 200, response.text
    assert response.content == whole.content


async def test_without_a_calculator_the_batch_is_503_before_any_answer(
    another_gateway: Callable[..., Any], client_for: Clients, case: Callable[..., dict[str, Any]]
) -> None:
    async with another_gateway(calculator_url=f"http://127.0.0.1:{free_port()}") as gateway:
        response = await post(client_for, gateway, body_of(lines(case, 3)))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]


@pytest.mark.parametrize("where", [0, 1])
async def test_a_line_too_long_is_a_413_problem_and_the_others_go_on(
    stack: Any, client_for: Clients, case: Callable[..., dict[str, Any]], where: int
) -> None:
    good = orjson.dumps(case())
    long = b'{"applicant": "' + b"x" * (1024 * 1024 + 1) + b'"}'
    body = b"\n".join([good, long, good] if where else [long, good, good]) + b"\n"
    response = await post(client_for, stack.gateway, body)
    assert response.status_code == 200, response.text
    answers = [orjson.loads(line) for line in response.content.splitlines()]
    assert [a["case_index"] for a in answers] == [0, 1, 2]
    problem = answers[where]
    assert (problem["status"], problem["type"].split("/")[-1]) == (413, "line-too-long")
    assert all("results" in a for i, a in enumerate(answers) if i != where)


async def test_ndjson_answered_as_one_json_document_holds_at_most_1000_cases(
    stack: Any, client_for: Clients, case: Callable[..., dict[str, Any]], film: dict[str, Any]
) -> None:
    headers = {"Content-Type": "application/x-ndjson", "Accept": "application/json"}
    async with client_for(stack.gateway) as client:
        at_most = await client.post(
            "/v1/calculations/batch", content=body_of(lines(case, 1000)), headers=headers
        )
        above = await client.post(
            "/v1/calculations/batch", content=body_of(lines(case, 1001)), headers=headers
        )
    assert at_most.status_code == 200, at_most.text
    assert len(at_most.json()["items"]) == 1000
    assert above.status_code == 413, above.text
    assert above.headers["content-type"] == "application/problem+json"
    assert "application/x-ndjson" in above.json()["detail"]


@contextlib.asynccontextmanager
async def answering(reply: bytes) -> AsyncIterator[str]:
    """An instance that answers every request with `reply` and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


NOT_HTTP = [
    pytest.param(b"SSH-2.0-OpenSSH_9.2\r\n", id="not-http"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Type: x\r\nBad Header\r\n\r\n", id="bad-header"),
]


@pytest.mark.parametrize("reply", NOT_HTTP)
async def test_an_instance_answering_what_is_not_http_is_passed_over(
    stack: Any,
    client_for: Clients,
    another_gateway: Callable[..., Any],
    case: Callable[..., dict[str, Any]],
    film: dict[str, Any],
    reply: bytes,
) -> None:
    """Such an answer had escaped as aiohttp's own exception: the part never ended, and the
    batch hung with no answer at all."""
    content = body_of(lines(case, 12))
    whole = await post(client_for, stack.gateway, content)
    async with (
        answering(reply) as broken,
        another_gateway(
            calculator_url=f"{broken},{stack.calculator_url}", batch_part_bytes=PART_BYTES
        ) as gateway,
    ):
        response = await asyncio.wait_for(post(client_for, gateway, content), 30)
    assert response.status_code == 200, response.text
    assert response.content == whole.content


@pytest.mark.parametrize("reply", NOT_HTTP)
async def test_a_lone_instance_answering_what_is_not_http_is_a_503_problem(
    another_gateway: Callable[..., Any],
    client_for: Clients,
    case: Callable[..., dict[str, Any]],
    reply: bytes,
) -> None:
    async with (
        answering(reply) as broken,
        another_gateway(calculator_url=broken) as gateway,
        client_for(gateway) as client,
    ):
        for accept in ("application/x-ndjson", "application/json"):
            response = await asyncio.wait_for(
                client.post(
                    "/v1/calculations/batch",
                    content=body_of(lines(case, 2)),
                    headers={"Content-Type": "application/x-ndjson", "Accept": accept},
                ),
                30,
            )
            assert response.status_code == 503, (accept, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        single = await client.post("/v1/calculations", json=case())
    assert single.status_code == 503, single.text


@pytest.mark.parametrize("part_bytes", [PART_BYTES, 256 * 1024])
async def test_a_byte_order_mark_within_the_stream_is_a_line_of_its_own(
    stack: Any,
    client_for: Clients,
    another_gateway: Callable[..., Any],
    case: Callable[..., dict[str, Any]],
    film: dict[str, Any],
    part_bytes: int,
) -> None:
    """Only the mark before the first line is ignored. One further on (two files joined) is a
    line that is not JSON, wherever the gateway cuts the parts: the calculator had dropped it
    again at the start of a part, and every later case was answered under the index before."""
    first, second = lines(case, 14)[:6], lines(case, 14)[7:13]
    bom = b"\xef\xbb\xbf"
    content = bom + bom + b"\n" + b"\n".join(first) + b"\n" + bom + b"\r\n" + b"\n".join(second)
    async with another_gateway(batch_part_bytes=part_bytes) as gateway:
        response = await post(client_for, gateway, streamed(content))
    assert response.status_code == 200, response.text
    answers = [orjson.loads(line) for line in response.content.splitlines()]
    assert [a["case_index"] for a in answers] == list(range(14))
    # the marks' lines (0 and 7) are not JSON; S5 has a bad identifier, S9 is not JSON
    problems = {a["case_index"]: a["status"] for a in answers if "results" not in a}
    assert problems == {0: 400, 6: 422, 7: 400, 10: 400}
    assert [a["results"][0]["subject"] for a in answers if "results" in a] == [
        f"S{i}" for i in (0, 1, 2, 3, 4, 7, 8, 10, 11, 12)
    ]


async def test_media_types_are_read_in_any_case(
    stack: Any, client_for: Clients, case: Callable[..., dict[str, Any]], film: dict[str, Any]
) -> None:
    content = body_of(lines(case, 3))
    async with client_for(stack.gateway) as client:
        document = await client.post(
            "/v1/calculations/batch",
            content=content,
            headers={"Content-Type": "Application/X-NDJSON", "Accept": "application/json"},
        )
        stream = await client.post(
            "/v1/calculations/batch",
            content=content,
            headers={"Content-Type": "application/x-ndjson", "Accept": "Application/X-NDJSON"},
        )
    assert document.status_code == 200, document.text
    assert len(document.json()["items"]) == 3
    assert stream.status_code == 200, stream.text
    assert stream.headers["content-type"].startswith("application/x-ndjson")
    assert len(stream.content.splitlines()) == 3


async def upload(
    url: str, key: str, length: int, sent: bytes, accept: bytes = NDJSON["Accept"].encode()
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A batch request on a connection of its own, `sent` the part of its `length` bytes of
    body sent so far: the connection, to read the answer from or to drop."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/calculations/batch HTTP/1.1\r\nHost: gateway\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Type: application/x-ndjson\r\nAccept: " + accept + b"\r\n"
        b"Content-Length: " + str(length).encode() + b"\r\n\r\n" + sent
    )
    await writer.drain()
    return reader, writer


async def first_answer(reader: asyncio.StreamReader) -> None:
    """Read a streamed batch's head and its first case's answer."""
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    await reader.readuntil(b"\n")  # the first chunk's size
    assert b'"case_index":0' in await reader.readuntil(b"\n")


def slow_instance(calculator_url: str, log: list[str]) -> FastAPI:
    """An instance that passes each part to the real calculator and relays its answers one
    every 50 ms; it records each part asked for and how its answer ended."""
    app = FastAPI()

    @app.post("/v1/calculations/batch")
    async def batch(request: Request) -> StreamingResponse:
        first = request.headers["x-first-case-index"]
        log.append(f"asked {first}")
        real = await answered_by(calculator_url, request)

        async def answers() -> AsyncIterator[bytes]:
            for line in real.content.splitlines(keepends=True):
                await asyncio.sleep(0.05)
                yield line
            log.append(f"answered {first}")

        return StreamingResponse(answers(), media_type="application/x-ndjson")

    return app


async def test_a_client_that_leaves_stops_its_batch(
    stack: Any,
    another_gateway: Callable[..., Any],
    admin_key: str,
    case: Callable[..., dict[str, Any]],
    film: dict[str, Any],
) -> None:
    """A server's `send` returns quietly once the client has gone: every part of the batch
    had still been asked for and computed, for no one."""
    log: list[str] = []
    content = body_of(lines(case, 60)) + b"\n"
    async with AsyncExitStack() as running:
        slow = await running.enter_async_context(
            live_server(slow_instance(stack.calculator_url, log))
        )
        gateway = await running.enter_async_context(
            another_gateway(calculator_url=slow, batch_part_bytes=PART_BYTES)
        )
        url = await running.enter_async_context(live_server(gateway))
        reader, writer = await upload(url, admin_key, len(content), content)
        await first_answer(reader)
        writer.transport.abort()
        asked_when_left = sum(entry.startswith("asked") for entry in log)
        await asyncio.sleep(2)  # fifteen parts of four answers each take 3 s to relay
    asked = [entry for entry in log if entry.startswith("asked")]
    assert len(asked) <= asked_when_left + 1, log
    assert len(asked) < 15 / 2, log
    assert sum(entry.startswith("answered") for entry in log) < len(asked), log


class Kept(logging.Handler):
    """The records logged while it is attached to the root logger."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_client_that_leaves_mid_upload_ends_its_batch_quietly(
    stack: Any,
    another_gateway: Callable[..., Any],
    admin_key: str,
    case: Callable[..., dict[str, Any]],
    film: dict[str, Any],
) -> None:
    """The answers to the cases sent so far have begun when the client leaves before the rest
    of its body: nothing went wrong in the gateway, so nothing is logged as an error."""
    content = body_of(lines(case, 40)) + b"\n"
    half = content[: content.index(b"\n", len(content) // 2) + 1]
    kept = Kept()
    async with AsyncExitStack() as running:
        gateway = await running.enter_async_context(another_gateway(batch_part_bytes=PART_BYTES))
        url = await running.enter_async_context(live_server(gateway))
        logging.getLogger().addHandler(kept)
        running.callback(logging.getLogger().removeHandler, kept)
        reader, writer = await upload(url, admin_key, len(content), half)
        await first_answer(reader)
        writer.transport.abort()
        await asyncio.sleep(0.5)
    assert any(r.name == "subsidy.access" for r in kept.records)  # the handler was heard
    errors = [r.getMessage() for r in kept.records if r.levelno >= logging.WARNING]
    assert not errors, errors


@pytest.mark.parametrize("accept", [b"application/x-ndjson", b"application/json"])
async def test_a_client_that_leaves_before_any_answer_is_logged_as_gone(
    stack: Any, another_gateway: Callable[..., Any], admin_key: str, accept: bytes
) -> None:
    """Half a first line and then nothing: the access log says 499 (nginx's "client closed
    request"), not that the calculator is unavailable, and no error is logged. Answers in
    NDJSON are spread in parts; one JSON answer is relayed from one instance as it comes."""
    kept = Kept()
    async with AsyncExitStack() as running:
        gateway = await running.enter_async_context(another_gateway())
        url = await running.enter_async_context(live_server(gateway))
        logging.getLogger().addHandler(kept)
        running.callback(logging.getLogger().removeHandler, kept)
        _, writer = await upload(url, admin_key, 1000, b'{"applicant": {"id"', accept)
        await asyncio.sleep(0.2)
        writer.transport.abort()
        await asyncio.sleep(0.3)
    statuses = [getattr(r, "status", None) for r in kept.records if r.name == "subsidy.access"]
    assert statuses, kept.records
    assert set(statuses) == {499}, statuses  # the calculator's too, when relayed
    errors = [r.getMessage() for r in kept.records if r.levelno >= logging.WARNING]
    assert not errors, errors
