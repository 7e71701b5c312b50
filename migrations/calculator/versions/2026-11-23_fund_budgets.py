"""Fund budgets (资金来源 with a budget) and the fund each claim drew on.

Revision ID: c0003
Revises: c0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0003"
down_revision: str | None = "c0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fund_budget",
        sa.Column("fund", sa.String(200), nullable=False),
        sa.Column("budget", sa.Numeric(14, 2), nullable=False),
        sa.Column("granted", sa.Numeric(14, 2), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(120), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.PrimaryKeyConstraint("fund", name="pk_fund_budget"),
        sa.CheckConstraint("budget >= 0", name="ck_fund_budget_budget"),
        sa.CheckConstraint("granted >= 0", name="ck_fund_budget_granted"),
    )
    with op.batch_alter_table("claim") as batch:
        batch.add_column(sa.Column("fund", sa.String(200), nullable=True))
        batch.drop_constraint("ck_claim_status", type_="check")
        batch.create_check_constraint(
            "ck_claim_status",
            "status IN ('granted', 'topped_up', 'duplicate', 'ineligible', 'needs_assessment', "
            "'unknown', 'needs_review', 'budget_exhausted', 'revoked')",
        )


def downgrade() -> None:
    with op.batch_alter_table("claim") as batch:
        batch.drop_constraint("ck_claim_status", type_="check")
        batch.create_check_constraint(
            "ck_claim_status",
            "status IN ('granted', 'topped_up', 'duplicate', 'ineligible', 'needs_assessment', "
            "'unknown', 'needs_review', 'revoked')",
        )
        batch.drop_column("fund")
    op.drop_table("fund_budget")
