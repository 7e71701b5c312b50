"""The claims ledger: claims, balances per (applicant, matter, subject) and per cap, and
idempotency records.

Revision ID: c0002
Revises: c0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0002"
down_revision: str | None = "c0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(14, 2)
STATUSES = "('granted', 'topped_up', 'duplicate', 'ineligible', 'needs_assessment', 'unknown', 'needs_review', 'revoked')"


def upgrade() -> None:
    op.create_table(
        "claim",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("applicant_id", sa.String(18), nullable=False),
        sa.Column("applicant_kind", sa.String(16), nullable=False),
        sa.Column("applicant_name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("region", sa.String(16), nullable=False),
        sa.Column("matter", sa.String(80), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("event_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("initial_status", sa.String(20), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("entitlement", MONEY, nullable=False),
        sa.Column("previously_granted", MONEY, nullable=False),
        sa.Column("cap_key", sa.String(120), nullable=True),
        sa.Column("duplicate_of", sa.JSON, nullable=False),
        sa.Column("review", sa.JSON, nullable=True),
        sa.Column("decision", sa.JSON, nullable=False),
        sa.Column("registry_version", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(120), nullable=True),
        sa.Column("revoke_reason", sa.String(2000), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_claim"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_claim_status"),
        sa.CheckConstraint("amount >= 0", name="ck_claim_amount"),
    )
    op.create_index("ix_claim_tenant_id", "claim", ["tenant_id", "created_at"])
    op.create_index("ix_claim_applicant_id", "claim", ["applicant_id", "matter", "subject"])
    op.create_index("ix_claim_matter_subject", "claim", ["matter", "subject"])
    op.create_table(
        "ledger_balance",
        sa.Column("applicant_id", sa.String(18), nullable=False),
        sa.Column("matter", sa.String(80), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("granted", MONEY, nullable=False),
        sa.PrimaryKeyConstraint("applicant_id", "matter", "subject", name="pk_ledger_balance"),
        sa.CheckConstraint("granted >= 0", name="ck_ledger_balance_granted"),
    )
    op.create_table(
        "cap_balance",
        sa.Column("applicant_id", sa.String(18), nullable=False),
        sa.Column("cap_key", sa.String(120), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("granted", MONEY, nullable=False),
        sa.PrimaryKeyConstraint("applicant_id", "cap_key", "year", name="pk_cap_balance"),
        sa.CheckConstraint("granted >= 0", name="ck_cap_balance_granted"),
    )
    op.create_table(
        "idempotency_record",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("claim_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_idempotency_record"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_record")
    op.drop_table("cap_balance")
    op.drop_table("ledger_balance")
    op.drop_index("ix_claim_matter_subject", "claim")
    op.drop_index("ix_claim_applicant_id", "claim")
    op.drop_index("ix_claim_tenant_id", "claim")
    op.drop_table("claim")
