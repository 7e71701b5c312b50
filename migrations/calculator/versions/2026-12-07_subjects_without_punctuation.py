"""A patent number or an identity number kept as one however it was written: punctuation
dropped, and a patent number's ZL or CN (`ZL201623189465.2`, `ZL201623189465·2`,
`CN2016.23189465.2` and `201623189465.2` are one patent), as calculations and claims now write
them. Balances of one subject written two ways are merged, and a subject's count of payments (a
compare-and-set counter) starts again under its new form. Other subjects are left as they are.

Revision ID: c0010
Revises: c0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from subsidy_common.identifiers import subject_key

revision: str = "c0010"
down_revision: str | None = "c0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    normalised = context.script.get_revision("c0005").module  # its renamed() and rekey()
    for old in normalised.renamed(connection, "subject_payment", subject_key):
        connection.execute(
            sa.text("DELETE FROM subject_payment WHERE subject = :old"), {"old": old}
        )
    normalised.rekey(connection, subject_key)


def downgrade() -> None:
    """The subjects' earlier forms are not kept: nothing to undo."""
