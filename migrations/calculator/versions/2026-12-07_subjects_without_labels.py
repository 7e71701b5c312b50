"""A patent number kept as one however it is labelled: `专利号ZL201623189465.2`,
`ZL201623189465.2号` and `ZL201623189465.2（发明）` are the patent `2016231894652`, and so is an
old number printed without its ZL (`98123456.X`), as calculations and claims now write them.
Balances of one patent written two ways are merged, and the labelled forms' counts of payments
start again under the patent's key, as revision c0010 did for punctuation.

Revision ID: c0011
Revises: c0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context

revision: str = "c0011"
down_revision: str | None = "c0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    context.script.get_revision("c0010").module.upgrade()  # with today's subject_key


def downgrade() -> None:
    """The subjects' earlier forms are not kept: nothing to undo."""
