"""Subjects kept in their normal form (NFKC, no separators or invisible characters, upper case),
as calculations and claims now write them: balances of one subject typed two ways are merged.
`rekey` does it for any form; later revisions call it for theirs.

Revision ID: c0005
Revises: c0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op
from subsidy_common.identifiers import normalise

revision: str = "c0005"
down_revision: str | None = "c0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def renamed(
    connection: sa.Connection, table: str, key: Callable[[str], str]
) -> dict[str, str]:
    """The table's subjects whose form under `key` differs, with that form."""
    subjects = connection.execute(sa.text(f"SELECT DISTINCT subject FROM {table}")).scalars()
    return {s: n for s in subjects if (n := key(s)) and n != s}


def upgrade() -> None:
    rekey(op.get_bind(), normalise)


def rekey(connection: sa.Connection, key: Callable[[str], str]) -> None:
    """Claims' subjects rewritten in `key`'s form, and balances that then meet merged."""
    for old, new in renamed(connection, "claim", key).items():
        connection.execute(
            sa.text("UPDATE claim SET subject = :new WHERE subject = :old"), {"old": old, "new": new}
        )
    for old, new in renamed(connection, "ledger_balance", key).items():
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
    """The subjects' first spellings are not kept: nothing to undo."""
