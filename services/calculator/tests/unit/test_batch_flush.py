"""A batch's answer moves while a long receipt of cases is decided, not only once it is done."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from calculator.calculations import endpoints


async def pieces_sent(
    monkeypatch: pytest.MonkeyPatch, windows: int, seconds_each: float
) -> list[int]:
    """How many answers each piece of a batch's answer holds, for one receipt of so many
    windows, each taking so long to decide (on a clock of the test's own)."""
    now = [0.0]
    monkeypatch.setattr(endpoints, "time", SimpleNamespace(monotonic=lambda: now[0]))

    async def decide(
        store: Any, reads: Any, window: Sequence[Any], first_index: int, *rest: Any
    ) -> list[dict[str, Any]]:
        now[0] += seconds_each
        return [{"case_index": first_index + i} for i in range(len(window))]

    monkeypatch.setattr(endpoints, "_decide_window", decide)

    async def one_receipt() -> AsyncIterator[list[bytes]]:
        yield [b"{}"] * (endpoints.WINDOW * windows)

    return [
        sum(len(window) for window in done)
        async for done in endpoints._decide_all(
            None,
            None,
            one_receipt(),
            None,
            None,
            0,
            lambda answers: answers,  # type: ignore[arg-type]
        )
    ]


async def test_windows_decided_slowly_are_sent_as_they_come(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five windows, each slow to decide (a past registry fetched for each case): sent in one
    piece, the first answer waited for all five, past the reader's timeout."""
    seconds_each = endpoints.FLUSH_SECONDS * 0.6
    assert await pieces_sent(monkeypatch, 5, seconds_each) == [endpoints.WINDOW * 2] * 2 + [
        endpoints.WINDOW
    ]


async def test_a_quick_receipt_is_sent_in_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    assert await pieces_sent(monkeypatch, 3, 0.001) == [endpoints.WINDOW * 3]
