"""The record of changes to tenants and keys: who created a tenant, issued, rotated or revoked a
key, disabled a tenant, and what a start with SUBSIDY_ADMIN_KEY replaced. Append-only.

Revision ID: g0003
Revises: g0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from subsidy_common.migrations import add_append_only_guard, drop_append_only_guard

revision: str = "g0003"
down_revision: str | None = "g0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    op.create_table(
        "tenant_change",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("key_id", sa.String(36), nullable=True),
        sa.Column("revoked_key_ids", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_change"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_tenant_change_tenant_id_tenant"
        ),
    )
    op.create_index("ix_tenant_change_tenant_id", "tenant_change", ["tenant_id"])
    add_append_only_guard("tenant_change", "the record of tenant changes is append-only")


def downgrade() -> None:
    drop_append_only_guard("tenant_change")
    op.drop_table("tenant_change")
