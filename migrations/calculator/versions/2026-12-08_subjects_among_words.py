"""A 居民身份证号码 or a 统一社会信用代码 kept as one whatever words in Chinese surround it
(`身份证号：…（本人）`, `泸州示例科技有限公司9151…`), a patent number with more of the labels
clerks write (`授权公告号：CN201623189465.2`, `ZL201623189465.2（已授权）`), and a subject
written with a minus sign or another dash (`HT−2024−001`) as with a hyphen, and dates and years
written one way (`黄荆村滑坡2024年7月15日` is `黄荆村滑坡2024.07.15`, `2024年度` is `2024`), as
calculations and claims now write them: balances of one subject written two ways are merged, as
revision c0010 did for punctuation.

Revision ID: c0015
Revises: c0014
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context

revision: str = "c0015"
down_revision: str | None = "c0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    context.script.get_revision("c0010").module.upgrade()  # with today's subject_key


def downgrade() -> None:
    """The subjects' earlier forms are not kept: nothing to undo."""
