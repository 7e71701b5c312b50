"""Money on SQLite kept as whole fen (INTEGER): SQLite has no exact decimal, so its NUMERIC held
yuan as binary floats, and a balance moved by its own arithmetic (250000.10 + 0.20 =
250000.30000000002) never again equalled what a claim had read of it. Each amount is rounded to
the fen it stands for. PostgreSQL's numeric(14, 2) is exact already and is left as it is.

Revision ID: c0007
Revises: c0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0007"
down_revision: str | None = "c0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = {
    "claim": ("amount", "entitlement", "previously_granted"),
    "ledger_balance": ("granted",),
    "cap_balance": ("granted",),
    "fund_budget": ("budget", "granted"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in MONEY.items():
        fen = ", ".join(f"{c} = CAST(ROUND({c} * 100) AS INTEGER)" for c in columns)
        op.execute(f"UPDATE {table} SET {fen}")  # noqa: S608
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(
                    column, existing_type=sa.Numeric(14, 2), type_=sa.BigInteger, nullable=False
                )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in MONEY.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(
                    column, existing_type=sa.BigInteger, type_=sa.Numeric(14, 2), nullable=False
                )
        yuan = ", ".join(f"{c} = ROUND({c} / 100.0, 2)" for c in columns)
        op.execute(f"UPDATE {table} SET {yuan}")  # noqa: S608
