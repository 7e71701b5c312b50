"""Query parameters the public routes share, and how they are passed on downstream."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Query

Limit = Annotated[int, Query(ge=1, le=500, description="每页条数")]
Cursor = Annotated[str | None, Query(max_length=80, description="上一页返回的游标")]


def forwarded(**values: object) -> dict[str, str]:
    """The parameters given, as a downstream request carries them (dates in ISO form)."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = value.isoformat() if isinstance(value, dt.date | dt.datetime) else str(value)
    return out
