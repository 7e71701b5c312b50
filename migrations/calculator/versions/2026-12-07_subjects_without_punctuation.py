"""A patent number or an identity number kept as one however it was written: punctuation
dropped, and a patent number's ZL or CN (`ZL201623189465.2`, `ZL201623189465·2`,
`CN2016.23189465.2` and `201623189465.2` are one patent), as calculations and claims now write
them. Balances of one subject written two ways are merged, and a subject's count of payments (a
compare-and-set counter) starts again under its new form. Other subjects are left as they are.

Revision ID: c0010
Revises: c0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from subsidy_common.identifiers import subject_key

revision: str = "c0010"
down_revision: str | None = "c0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _renamed(connection: sa.Connection, table: str) -> dict[str, str]:
    subjects = connection.execute(sa.text(f"SELECT DISTINCT subject FROM {table}")).scalars()
    return {s: n for s in subjects if (n := subject_key(s)) and n != s}


def upgrade() -> None:
    connection = op.get_bind()
    for old in _renamed(connection, "subject_payment"):
        connection.execute(
            sa.text("DELETE FROM subject_payment WHERE subject = :old"), {"old": old}
        )
    for old, new in _renamed(connection, "claim").items():
        connection.execute(
            sa.text("UPDATE claim SET subject = :new WHERE subject = :old"), {"old": old, "new": new}
        )
    for old, new in _renamed(connection, "ledger_balance").items():
        rows = connection.execute(
            sa.text("SELECT applicant_id, matter, granted FROM ledger_balance WHERE subject = :old"),
            {"old": old},
        ).all()
        for applicant_id, matter, granted in rows:
            key = {"a": applicant_id, "m": matter, "old": old, "new": new, "g": granted}
            merged = connection.execute(
                sa.text(
                    "UPDATE ledger_balance SET granted = granted + :g"
                    " WHERE applicant_id = :a AND matter = :m AND subject = :new"
                ),
                key,
            ).rowcount
            if merged:
                connection.execute(
                    sa.text(
                        "DELETE FROM ledger_balance"
                        " WHERE applicant_id = :a AND matter = :m AND subject = :old"
                    ),
                    key,
                )
            else:
                connection.execute(
                    sa.text(
                        "UPDATE ledger_balance SET subject = :new"
                        " WHERE applicant_id = :a AND matter = :m AND subject = :old"
                    ),
                    key,
                )


def downgrade() -> None:
    """The subjects' earlier forms are not kept: nothing to undo."""
