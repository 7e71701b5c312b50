"""Request field types as the contract writes them: dates `YYYY-MM-DD`, instants RFC 3339 with
an offset, counts as JSON integers. Pydantic's lax parsing would read 0 as 1970-01-01."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Strict

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)

# `?as_of=2024-01-01T00:00:00+08:00` typed into a URL as it is: a query string reads `+` as a
# space, so the offset arrives as ` 08:00`. Nothing else can be meant by a space there.
_QUERY_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})? \d{2}:\d{2}$")


def _iso_date(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE.match(value):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


def _instant(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str) and _INSTANT.match(value):
        return value
    raise ValueError("must be an RFC 3339 instant with an offset, e.g. 2024-01-01T00:00:00+08:00")


def _query_instant(value: Any) -> Any:
    if isinstance(value, str) and _QUERY_OFFSET.match(value):
        value = value[:-6] + "+" + value[-5:]
    return _instant(value)


def _in_range(value: dt.datetime) -> dt.datetime:
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not 1900 <= utc.year <= 9998:
        raise ValueError("must be an instant between the years 1900 and 9998")
    return value


# How far ahead of a service's clock a recorded instant may be, for a client's clock that runs a
# little fast: the registry waits for it to pass before it answers (`settle_writes`).
AHEAD_SECONDS = 2.0


def _not_ahead(value: dt.datetime) -> dt.datetime:
    """An instant the registry has recorded, not one still to come: what is recorded at an
    instant not yet past can still change, and an answer for it would not reproduce."""
    if value > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=AHEAD_SECONDS):
        raise ValueError("must not be later than now: the registry then is not recorded yet")
    return value


def _policy_year(value: dt.date) -> dt.date:
    if not 1900 <= value.year <= 2199:
        raise ValueError("must be a date between the years 1900 and 2199")
    return value


def _said(value: str) -> str:
    value = value.strip()
    if len(value) < 2:
        raise ValueError("must say something: at least two characters besides spaces")
    return value


def _half_width(value: Any) -> Any:
    if isinstance(value, str) and not value.isascii():
        return unicodedata.normalize("NFKC", value)
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
# A code typed with full-width digits (５１０５２１), as a Chinese input method may, is the code.
HalfWidth = Annotated[str, BeforeValidator(_half_width)]
# The dates of a policy, and of an event judged by one: far from the calendar's ends, where the
# day before or after, or a schedule's last month, would not exist.
PolicyDate = Annotated[dt.date, BeforeValidator(_iso_date), AfterValidator(_policy_year)]
# Why a change was made, as the audit log keeps it: blank is no reason.
Reason = Annotated[str, AfterValidator(_said)]
Instant = Annotated[dt.datetime, BeforeValidator(_instant), AfterValidator(_in_range)]
# The same in a query string, where an unencoded `+` of the offset has become a space.
QueryInstant = Annotated[dt.datetime, BeforeValidator(_query_instant), AfterValidator(_in_range)]
# An instant to read the registry as recorded at, in a body or a query: not in the future.
RecordedInstant = Annotated[Instant, AfterValidator(_not_ahead)]
QueryRecordedInstant = Annotated[QueryInstant, AfterValidator(_not_ahead)]
Count = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
