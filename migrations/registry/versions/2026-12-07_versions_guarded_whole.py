"""A document version is guarded whole: every column but the closing instant, on both databases.

Revision ID: r0005
Revises: r0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "r0005"
down_revision: str | None = "r0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "id",
    "document_id",
    "version",
    "content_hash",
    "origin",
    "file_hash",
    "recorded_at",
    "author",
    "reason",
)


def _pg_guard(columns: Sequence[str]) -> str:
    changed = " OR ".join(
        ["NEW.content::text IS DISTINCT FROM OLD.content::text"]
        + [f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns]
    )
    return f"""CREATE OR REPLACE FUNCTION document_version_guard() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'document versions are never deleted';
      END IF;
      IF OLD.superseded_at IS NOT NULL OR {changed} THEN
        RAISE EXCEPTION 'document versions are immutable; only superseded_at may be set, once';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql"""


def _sqlite_guard(columns: Sequence[str]) -> list[str]:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in ("content", *columns))
    return [
        "DROP TRIGGER document_version_immutable",
        f"""CREATE TRIGGER document_version_immutable BEFORE UPDATE ON document_version
           WHEN OLD.superseded_at IS NOT NULL OR {changed}
           BEGIN SELECT RAISE(ABORT, 'document versions are immutable'); END""",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_pg_guard(COLUMNS))
    else:
        for statement in _sqlite_guard(COLUMNS):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_pg_guard(("version", "document_id", "recorded_at", "author", "reason")))
    else:
        for statement in _sqlite_guard(("version", "document_id")):
            op.execute(statement)
