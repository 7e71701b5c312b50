"""The duplex streamed response: its background task runs however the response ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.background import BackgroundTask
from subsidy_common.streaming import BOM, DuplexStreamingResponse, without_bom


class Gone(OSError):
    """The client went away."""


async def body() -> AsyncIterator[bytes]:
    yield b"1\n"
    yield b"2\n"


async def nothing() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def response(ran: list[str]) -> DuplexStreamingResponse:
    return DuplexStreamingResponse(
        body(), media_type="application/x-ndjson", background=BackgroundTask(ran.append, "closed")
    )


async def test_an_answer_sent_whole_runs_its_background_after_the_last_chunk() -> None:
    ran: list[str] = []
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        assert not ran
        sent.append(message)

    await response(ran)({"type": "http"}, nothing, send)
    assert [m.get("body") for m in sent] == [None, b"1\n", b"2\n", b""]
    assert ran == ["closed"]


@pytest.mark.parametrize("fails_at", [0, 1, 3])
async def test_a_client_gone_at_any_point_still_runs_the_background(fails_at: int) -> None:
    ran: list[str] = []
    messages = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal messages
        if messages == fails_at:
            raise Gone
        messages += 1

    with pytest.raises(Gone):
        await response(ran)({"type": "http"}, nothing, send)
    assert ran == ["closed"]


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize(
    ("parts", "read"),
    [
        ((BOM + b'{"a":1}\n',), b'{"a":1}\n'),
        ((b"\xef", b"\xbb", b"\xbf{}\n", b"{}\n"), b"{}\n{}\n"),
        ((b"", BOM, b"{}"), b"{}"),
        ((BOM,), b""),
        ((b"\xef\xbb",), b"\xef\xbb"),  # not a mark: left for the parser to refuse
        ((b'{"a":1}\n', BOM), b'{"a":1}\n' + BOM),  # only at the start
        ((), b""),
    ],
)
async def test_a_leading_byte_order_mark_is_dropped(parts: tuple[bytes, ...], read: bytes) -> None:
    assert b"".join([c async for c in without_bom(chunks(*parts))]) == read
