"""Each claim records which cap balances its grant moved (its cap key's cumulative one, year 0,
and the yearly one of its event's year), so that its revocation takes its amount back from those
and no other. Revocations had taken it back from both whenever both existed, though clauses
sharing a cap key may cap differently (one cumulatively, one per year).

For the claims recorded before, it is read off the ledger where the ledger proves it. The claims
of one clause under one registry version move the same balances. For each balance, every choice
of which of those groups moved it is replayed: what each grant added, what each revocation took
back (from every balance of its key that existed by then, as revocations did). A group's answer is
kept when every choice that ends at the balance as it stands agrees on it; otherwise it stays
NULL, and a revocation leaves that balance as it is: it may keep counting a grant taken back
(an applicant refused too early, which an administrator can see and correct) but never forgets
one that still stands (paid beyond the cap).

Revision ID: c0008
Revises: c0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op
from subsidy_common.columns import UtcDateTime

revision: str = "c0008"
down_revision: str | None = "c0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAID = ("granted", "topped_up")
# Beyond this many groups under one cap key of one applicant, the choices are too many to try:
# their claims stay unknown.
MOST_GROUPS = 12

claim = sa.table(
    "claim",
    sa.column("id", sa.String),
    sa.column("applicant_id", sa.String),
    sa.column("cap_key", sa.String),
    sa.column("event_date", sa.Date),
    sa.column("status", sa.String),
    sa.column("amount", sa.Numeric),  # whole fen on SQLite, yuan on PostgreSQL: only summed
    sa.column("created_at", UtcDateTime()),
    sa.column("revoked_at", UtcDateTime()),
    sa.column("registry_version", sa.String),
    sa.column("decision", sa.JSON),
    sa.column("cumulative_cap_moved", sa.Boolean),
    sa.column("yearly_cap_moved", sa.Boolean),
)
cap_balance = sa.table(
    "cap_balance",
    sa.column("applicant_id", sa.String),
    sa.column("cap_key", sa.String),
    sa.column("year", sa.Integer),
    sa.column("granted", sa.Numeric),
)
Group = tuple[str, str]


class Granted(NamedTuple):  # not a dataclass: Alembic loads this module outside sys.modules
    """A claim that moved cap balances of its key when it was granted."""

    id: str
    group: Group
    year: int
    amount: Decimal
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def upgrade() -> None:
    op.add_column("claim", sa.Column("cumulative_cap_moved", sa.Boolean, nullable=True))
    op.add_column("claim", sa.Column("yearly_cap_moved", sa.Boolean, nullable=True))
    connection = op.get_bind()
    balances = {
        (row.applicant_id, row.cap_key, row.year): Decimal(row.granted)
        for row in connection.execute(sa.select(cap_balance))
    }
    rows = connection.execute(
        sa.select(
            claim.c.id,
            claim.c.applicant_id,
            claim.c.cap_key,
            claim.c.event_date,
            claim.c.status,
            claim.c.amount,
            claim.c.created_at,
            claim.c.revoked_at,
            claim.c.registry_version,
            claim.c.decision[("granted", "clause_id")].as_string().label("clause"),
        )
        .where(claim.c.cap_key.is_not(None), claim.c.status.in_((*PAID, "revoked")))
        .order_by(claim.c.applicant_id, claim.c.cap_key)
    )
    found: list[dict[str, object]] = []
    for (applicant_id, cap_key), same_key in itertools.groupby(
        rows, lambda r: (r.applicant_id, r.cap_key)
    ):
        granted = [
            Granted(
                id=row.id,
                group=(row.clause or "", row.registry_version),
                year=row.event_date.year,
                amount=Decimal(row.amount),
                created_at=row.created_at,
                revoked_at=row.revoked_at if row.status == "revoked" else None,
            )
            for row in same_key
        ]
        cumulative = _moved(granted, balances.get((applicant_id, cap_key, 0)))
        yearly = {
            year: _moved(list(of_year), balances.get((applicant_id, cap_key, year)))
            for year, of_year in itertools.groupby(
                sorted(granted, key=lambda g: g.year), lambda g: g.year
            )
        }
        found.extend(
            {"claim_id": g.id, "cumulative": cumulative.get(g.group),
             "yearly": yearly[g.year].get(g.group)}
            for g in granted
            if g.revoked_at is None
        )  # fmt: skip
    if found:
        connection.execute(
            sa.update(claim)
            .where(claim.c.id == sa.bindparam("claim_id"))
            .values(
                cumulative_cap_moved=sa.bindparam("cumulative"),
                yearly_cap_moved=sa.bindparam("yearly"),
            ),
            found,
        )


def _moved(granted: Sequence[Granted], balance: Decimal | None) -> dict[Group, bool]:
    """Whether each group's grants moved this balance, for the groups every choice that ends at
    it agrees on."""
    groups = sorted({g.group for g in granted})
    if len(groups) > MOST_GROUPS:
        return {}
    fitting = [moving for moving in _choices(groups) if _replayed(granted, moving) == balance]
    return {
        group: group in fitting[0]
        for group in groups
        if fitting and all((group in moving) == (group in fitting[0]) for moving in fitting)
    }


def _choices(groups: Sequence[Group]) -> Iterator[frozenset[Group]]:
    for size in range(len(groups) + 1):
        for moving in itertools.combinations(groups, size):
            yield frozenset(moving)


def _replayed(granted: Sequence[Granted], moving: frozenset[Group]) -> Decimal | None:
    """The balance the grants would have left had the `moving` groups' moved it; None when it
    would not exist. A grant taken back took its amount from it too if the balance was its own,
    and, mistakenly, if the balance existed by then."""
    moved = [g for g in granted if g.group in moving]
    if not moved:
        return None
    since = min(g.created_at for g in moved)
    standing = sum((g.amount for g in moved if g.revoked_at is None), Decimal(0))
    mistaken = sum(
        (
            g.amount
            for g in granted
            if g.group not in moving and g.revoked_at is not None and g.revoked_at > since
        ),
        Decimal(0),
    )
    return standing - mistaken


def downgrade() -> None:
    with op.batch_alter_table("claim") as batch:
        batch.drop_column("yearly_cap_moved")
        batch.drop_column("cumulative_cap_moved")
