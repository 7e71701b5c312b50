"""A 居民身份证号码 or a 统一社会信用代码 written with its label (`身份证号：…`,
`统一社会信用代码：…`) is the bare number, as calculations and claims now write it: balances of
one person or organisation written so are merged, as revision c0010 did for patents.

Revision ID: c0014
Revises: c0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context

revision: str = "c0014"
down_revision: str | None = "c0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    context.script.get_revision("c0010").module.upgrade()  # with today's subject_key


def downgrade() -> None:
    """The subjects' earlier forms are not kept: nothing to undo."""
