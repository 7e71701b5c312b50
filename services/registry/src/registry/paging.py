"""Lists a page at a time, as the contract has them: `?limit=` and `?cursor=`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Query
from subsidy_common.problems import not_a_cursor

Limit = Annotated[int, Query(ge=1, le=500, description="每页条数")]
Cursor = Annotated[str | None, Query(max_length=80, description="上一页返回的游标")]

T = TypeVar("T")


def page(
    items: Sequence[T], key: Callable[[T], str], limit: int, cursor: str | None
) -> tuple[list[T], str | None]:
    """The items after the one the cursor names, at most `limit` of them, and the cursor of the
    next page (None on the last). A short list kept in order: its keys are the cursors."""
    start = 0
    if cursor is not None:
        keys = [key(item) for item in items]
        if cursor not in keys:
            raise not_a_cursor()
        start = keys.index(cursor) + 1
    chosen = list(items[start : start + limit])
    more = start + limit < len(items)
    return chosen, key(chosen[-1]) if more and chosen else None
