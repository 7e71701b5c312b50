"""API keys record whether SUBSIDY_ADMIN_KEY put them there (the bootstrap key).

The key made together with the tenant named admin is the one the first start made from
SUBSIDY_ADMIN_KEY; a later bootstrap key is recognised when the gateway starts with it.

Revision ID: g0002
Revises: g0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "g0002"
down_revision: str | None = "g0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_key") as batch:
        batch.add_column(
            sa.Column("bootstrap", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    api_key = sa.table(
        "api_key",
        sa.column("tenant_id", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("bootstrap", sa.Boolean),
    )
    tenant = sa.table(
        "tenant",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("role", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    made_with_the_admin_tenant = (
        sa.select(tenant.c.id)
        .where(
            tenant.c.id == api_key.c.tenant_id,
            tenant.c.name == "admin",
            tenant.c.role == "admin",
            tenant.c.created_at == api_key.c.created_at,
        )
        .exists()
    )
    op.execute(api_key.update().where(made_with_the_admin_tenant).values(bootstrap=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("api_key") as batch:
        batch.drop_column("bootstrap")
