"""The check that ends a claim's write on PostgreSQL: every balance moved, the locks were free.

A claim's write is one statement; when a balance it moves no longer holds what was read, or
(for a claim written without the locks) a locked claim holds the same key, applicant or fund,
this function fails the statement with serialization_failure, so nothing of it is kept and the
claim is decided again. SQLite keeps its claims in one process behind its own locks and has no
use for it.

Revision ID: c0004
Revises: c0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c0004"
down_revision: str | None = "c0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION claim_settled(moved bigint, expected bigint, free boolean)
        RETURNS bigint LANGUAGE plpgsql AS $$
        BEGIN
          IF NOT free THEN
            RAISE EXCEPTION 'a locked claim holds this key, applicant or fund'
              USING ERRCODE = 'serialization_failure';
          END IF;
          IF moved <> expected THEN
            RAISE EXCEPTION 'a balance moved since it was read'
              USING ERRCODE = 'serialization_failure';
          END IF;
          RETURN moved;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION claim_settled(bigint, bigint, boolean)")
