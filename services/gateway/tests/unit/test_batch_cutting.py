"""Cutting an NDJSON body into parts: every case once, in order, numbered from its start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from gateway.clients.batches import cut_parts
from hypothesis import given, settings
from hypothesis import strategies as st
from subsidy_common.streaming import BOM, MAX_LINE_BYTES, OVERLONG

lines = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=40).map(lambda b: b"{" + b.replace(b"\n", b"") + b"}"),
        st.sampled_from([b"", b" ", b"\t \r", b"\x0b"]),  # blank: not a case
    ),
    max_size=60,
)


async def chunked(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for size in sizes:
        yield data[start : start + size]
        start += size
    yield data[start:]


async def cut(
    data: bytes, sizes: list[int], part_bytes: int, idle: bool
) -> list[tuple[int, bytes]]:
    return [
        (p.first, p.body) async for p in cut_parts(chunked(data, sizes), part_bytes, lambda: idle)
    ]


@settings(max_examples=300, deadline=None)
@given(
    lines=lines,
    final_newline=st.booleans(),
    sizes=st.lists(st.integers(min_value=0, max_value=50), max_size=30),
    part_bytes=st.integers(min_value=1, max_value=200),
    idle=st.booleans(),
    bom=st.booleans(),
)
def test_every_case_once_in_order(
    lines: list[bytes],
    final_newline: bool,
    sizes: list[int],
    part_bytes: int,
    idle: bool,
    bom: bool,
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    parts = asyncio.run(cut(BOM + data if bom else data, sizes, part_bytes, idle))
    cases = [line for line in data.split(b"\n") if line.strip()]
    assert b"".join(body for _, body in parts) == b"".join(c + b"\n" for c in cases)
    first = 0
    for start, body in parts:
        assert start == first
        assert body.endswith(b"\n")
        count = body.count(b"\n")
        assert count >= 1
        # A part stops at the line that fills it.
        assert len(body) - len(body[:-1].rsplit(b"\n", 1)[-1]) - 1 < part_bytes
        first += count


@pytest.mark.parametrize("ended", [True, False])
@pytest.mark.parametrize("sizes", [[10, 100_000], [MAX_LINE_BYTES + 20]])
def test_a_line_above_the_limit_is_passed_over_for_a_stand_in(
    ended: bool, sizes: list[int]
) -> None:
    """The cases around it go on, and the line is counted as a case, answered as too long."""
    long = b"x" * (MAX_LINE_BYTES + 1) + (b"\n" if ended else b"")
    data = b'{"a": 1}\n' + long + (b'{"b": 2}\n' if ended else b"")
    parts = asyncio.run(cut(data, sizes, 1024, idle=False))
    whole = b"".join(body for _, body in parts)
    expected = [b'{"a": 1}', OVERLONG] + ([b'{"b": 2}'] if ended else [])
    assert whole.split(b"\n")[:-1] == expected
