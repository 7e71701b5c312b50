"""Each (matter, subject)'s count of paying claims, whichever the applicant: a paying claim
moves it by compare-and-set, so that two applicants cannot both be paid at once for one subject.
It starts at nothing for subjects paid before: only claims paid from now on have to meet.

Revision ID: c0009
Revises: c0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0009"
down_revision: str | None = "c0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_payment",
        sa.Column("matter", sa.String(length=80), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("payments", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("matter", "subject", name="pk_subject_payment"),
    )


def downgrade() -> None:
    op.drop_table("subject_payment")
