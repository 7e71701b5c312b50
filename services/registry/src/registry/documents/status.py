"""A document's status on a date, derived from its dates and never stored."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from registry.policy_files.models import Document

Status = Literal["in_force", "not_yet_in_force", "expired", "repealed"]


def status_on(document: Document, day: dt.date) -> Status:
    """`repealed` from the repeal date on, `expired` after the last day, else by the start."""
    if document.repealed_date is not None and day >= document.repealed_date:
        return "repealed"
    if document.effective_to is not None and day > document.effective_to:
        return "expired"
    if day < document.effective_from:
        return "not_yet_in_force"
    return "in_force"


def covers(jurisdiction: list[str], region: str, parents: dict[str, str | None]) -> bool:
    """Whether a document for `jurisdiction` applies in `region` (a region is inside its
    ancestors), or, for a region above the jurisdiction, whether it reaches into it."""
    for code in jurisdiction:
        seen: str | None = region
        while seen is not None:
            if seen == code:
                return True
            seen = parents.get(seen)
        seen = parents.get(code)
        while seen is not None:
            if seen == region:
                return True
            seen = parents.get(seen)
    return False
