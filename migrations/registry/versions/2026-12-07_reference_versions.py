"""Regions and matters as recorded over time.

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0004"
down_revision: str | None = "r0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reference_version",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reference_version"),
    )
    op.create_index("ix_reference_version_recorded_at", "reference_version", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_reference_version_recorded_at", "reference_version")
    op.drop_table("reference_version")
