"""Regions and matters.

Revision ID: r0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "region",
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("parent", sa.String(16), sa.ForeignKey("region.code", name="fk_region_parent_region"), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("code", name="pk_region"),
    )
    op.create_table(
        "matter",
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("beneficiaries", sa.JSON, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("strategy", sa.JSON, nullable=True),
        sa.Column("subject", sa.String(200), nullable=True),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("key", name="pk_matter"),
    )


def downgrade() -> None:
    op.drop_table("matter")
    op.drop_table("region")
