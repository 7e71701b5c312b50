"""A claim held for review is approved or rejected by the admin: review_approved,
review_rejected. The decision (who, when, why) is kept in the claim's review.

Revision ID: c0012
Revises: c0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c0012"
down_revision: str | None = "c0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = (
    "status IN ('granted', 'topped_up', 'duplicate', 'ineligible', 'needs_assessment', "
    "'unknown', 'needs_review', 'budget_exhausted', 'cap_exhausted', 'revoked')"
)
_AFTER = (
    "status IN ('granted', 'topped_up', 'duplicate', 'ineligible', 'needs_assessment', "
    "'unknown', 'needs_review', 'budget_exhausted', 'cap_exhausted', 'revoked', "
    "'review_approved', 'review_rejected')"
)


def upgrade() -> None:
    with op.batch_alter_table("claim") as batch:
        batch.drop_constraint("ck_claim_status", type_="check")
        batch.create_check_constraint("ck_claim_status", _AFTER)


def downgrade() -> None:
    op.execute(
        "UPDATE claim SET status = 'needs_review'"
        " WHERE status IN ('review_approved', 'review_rejected')"
    )
    with op.batch_alter_table("claim") as batch:
        batch.drop_constraint("ck_claim_status", type_="check")
        batch.create_check_constraint("ck_claim_status", _BEFORE)
