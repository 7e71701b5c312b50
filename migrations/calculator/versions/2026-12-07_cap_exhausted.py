"""A claim whose clause's cumulative or yearly cap is used up is recorded as cap_exhausted.

Revision ID: c0006
Revises: c0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c0006"
down_revision: str | None = "c0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = (
    "status IN ('granted', 'topped_up', 'duplicate', 'ineligible', 'needs_assessment', "
    "'unknown', 'needs_review', 'budget_exhausted', 'revoked')"
)
_AFTER = (
    "status IN ('granted', 'topped_up', 'duplicate', 'ineligible', 'needs_assessment', "
    "'unknown', 'needs_review', 'budget_exhausted', 'cap_exhausted', 'revoked')"
)


def upgrade() -> None:
    with op.batch_alter_table("claim") as batch:
        batch.drop_constraint("ck_claim_status", type_="check")
        batch.create_check_constraint("ck_claim_status", _AFTER)


def downgrade() -> None:
    op.execute("UPDATE claim SET status = 'duplicate' WHERE status = 'cap_exhausted'")
    with op.batch_alter_table("claim") as batch:
        batch.drop_constraint("ck_claim_status", type_="check")
        batch.create_check_constraint("ck_claim_status", _BEFORE)
