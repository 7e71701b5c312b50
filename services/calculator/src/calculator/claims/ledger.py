"""What a claim's transaction does to the ledger, whichever database holds it.

A claim owns its idempotency key and its applicant, reads what it needs under those locks,
takes what is left of a budgeted fund, and writes its moves, the claim and the stored response
together. `postgres.py` does this in a few round trips; `sqlite.py` through SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from calculator.engine.model import Ledger


class LedgerMoved(Exception):
    """A balance changed between its read and its update: the transaction must start again."""


@dataclass(frozen=True, slots=True)
class Stored:
    """The first response to an idempotency key."""

    request_hash: str
    status_code: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Seen:
    """What a claim reads once it owns its key and its applicant."""

    stored: Stored | None
    ledger: Ledger
    paid: list[str]
    """ids of the claims that paid this applicant for the same matter and subject"""
    others: list[Mapping[str, Any]]
    """paid claims for the same matter and subject under other applicant identifiers, each with
    when it was made (`created_at`)"""
    held_names: list[str]
    """the name keys of this applicant's claims for the same matter and subject held for
    review or rejected by it, the names it gave then"""
    cleared_at: dt.datetime | None
    """when a claim of this applicant for the same matter and subject was approved on review,
    if that approval still stands: the look-alikes paid before it no longer hold it"""
    budgeted: frozenset[str]
    """the funds that have a budget"""


# An applicant's own claims that tell what reviews of it still stand.
REVIEWED = ("needs_review", "review_rejected", "review_approved", "granted", "topped_up", "revoked")


def reviewed(own: Iterable[Mapping[str, Any]]) -> tuple[list[str], dt.datetime | None]:
    """From an applicant's own claims for one matter and subject (`status`, `name_key`,
    `created_at`, `revoked_at`, `decided_at` of a review): the names it gave on those held or
    rejected, and the approval that still stands. An approval lets the applicant through once:
    it stands until a rejection is decided after it, or a claim of the applicant pays, or is
    revoked (when it is revoked, not when it was made)."""
    held: list[str] = []
    approved: dt.datetime | None = None
    since: dt.datetime | None = None  # the last rejection, payment or revocation
    for row in own:
        status = row["status"]
        if status in ("needs_review", "review_rejected"):
            held.append(row["name_key"])
        if status == "review_approved":
            approved = _latest(approved, instant(row["decided_at"]))
        elif status == "review_rejected":
            since = _latest(since, instant(row["decided_at"]))
        elif status in ("granted", "topped_up", "revoked"):
            since = _latest(since, instant(row["created_at"]))
            if status == "revoked" and row.get("revoked_at") is not None:
                since = _latest(since, instant(row["revoked_at"]))
    standing = approved is not None and (since is None or approved > since)
    return held, approved if standing else None


def instant(value: dt.datetime | str) -> dt.datetime:
    """An instant as a row holds it: a datetime, or its ISO text in a JSON document."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


def _latest(a: dt.datetime | None, b: dt.datetime) -> dt.datetime:
    return b if a is None or b > a else a


@dataclass(frozen=True, slots=True)
class Move:
    """Add `delta` to a balance, provided it still holds `seen` (compare and set).

    `key`: (applicant, matter, subject) for a subject's balance, (applicant, cap key, year) for
    a cap's (year 0: the cumulative cap), (fund,) for a fund's.
    """

    balance: Literal["subject", "cap", "fund"]
    key: tuple[str | int, ...]
    seen: Decimal
    delta: Decimal


@dataclass(frozen=True, slots=True)
class Response:
    """The response stored with a grant, to replay it for the same key."""

    tenant_id: str
    key: str
    request_hash: str
    status_code: int
    body: bytes
    claim_id: str


class ClaimTransaction(Protocol):
    """The statements of one claim, inside one transaction."""

    async def own(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> bool:
        """Hold the key, then the matter and subject (whoever claims them), then the applicant,
        until the transaction ends; False if another request holds the key."""
        ...

    async def read(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> Seen:
        """The stored response to the key and the applicant's ledger, as committed now."""
        ...

    async def budget(self, fund: str) -> tuple[Decimal, Decimal] | None:
        """Hold a fund until the transaction ends; its budget and what it granted so far."""
        ...

    async def write(
        self, moves: Sequence[Move], claim: Mapping[str, Any], response: Response
    ) -> None:
        """Move the balances, record the claim and keep the response, or raise LedgerMoved."""
        ...


class Claims(Protocol):
    """Where claims are recorded."""

    def transaction(
        self, *, optimistic: bool = False
    ) -> AbstractAsyncContextManager[ClaimTransaction]:
        """A transaction, committed when the block ends without an error.

        An optimistic one may hold no locks and commit its statements one by one; then its
        write refuses (LedgerMoved, or a serialisation failure) when anything it read has moved
        or a claim holding the locks holds the same key, applicant or fund, and the claim is
        tried again with the locks.
        """
        ...

    async def close(self) -> None:
        """Release the connections."""
        ...
