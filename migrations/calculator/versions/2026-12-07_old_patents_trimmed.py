"""An old patent number in brackets or after a label's colon (`专利号：98123456.X`,
`（98123456.X）`) is the patent `98123456X`, as calculations and claims now write it: balances of
one patent written so are merged, as revision c0010 did for punctuation.

Revision ID: c0013
Revises: c0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context

revision: str = "c0013"
down_revision: str | None = "c0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    context.script.get_revision("c0010").module.upgrade()  # with today's subject_key


def downgrade() -> None:
    """The subjects' earlier forms are not kept: nothing to undo."""
