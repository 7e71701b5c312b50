"""Document versions (bitemporal) and the append-only audit log.

Revision ID: r0002
Revises: r0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A version is immutable: the only change allowed is closing it, once.
PG_GUARDS = [
    """CREATE FUNCTION document_version_guard() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'document versions are never deleted';
      END IF;
      IF OLD.superseded_at IS NOT NULL
         OR NEW.content::text IS DISTINCT FROM OLD.content::text OR NEW.version <> OLD.version
         OR NEW.document_id <> OLD.document_id OR NEW.recorded_at <> OLD.recorded_at
         OR NEW.author <> OLD.author OR NEW.reason <> OLD.reason THEN
        RAISE EXCEPTION 'document versions are immutable; only superseded_at may be set, once';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER document_version_immutable BEFORE UPDATE OR DELETE ON document_version
       FOR EACH ROW EXECUTE FUNCTION document_version_guard()""",
    """CREATE FUNCTION audit_entry_guard() RETURNS trigger AS $$
    BEGIN
      RAISE EXCEPTION 'the audit log is append-only';
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry
       FOR EACH ROW EXECUTE FUNCTION audit_entry_guard()""",
]

SQLITE_GUARDS = [
    """CREATE TRIGGER document_version_no_delete BEFORE DELETE ON document_version
       BEGIN SELECT RAISE(ABORT, 'document versions are never deleted'); END""",
    """CREATE TRIGGER document_version_immutable BEFORE UPDATE ON document_version
       WHEN OLD.superseded_at IS NOT NULL OR NEW.content IS NOT OLD.content
         OR NEW.version <> OLD.version OR NEW.document_id <> OLD.document_id
       BEGIN SELECT RAISE(ABORT, 'document versions are immutable'); END""",
    """CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
]


def upgrade() -> None:
    op.create_table(
        "document_version",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("document_id", sa.String(80), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("file_hash", sa.String(64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("author", sa.String(120), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_document_version"),
        sa.UniqueConstraint("document_id", "version", name="uq_document_version_document_id"),
        sa.CheckConstraint("origin IN ('file', 'api')", name="ck_document_version_origin"),
        sa.CheckConstraint("version >= 1", name="ck_document_version_version"),
    )
    op.create_index("ix_document_version_document_id", "document_version", ["document_id"])
    # At most one open (current) version per document, enforced by the database.
    op.create_index(
        "ux_document_version_current",
        "document_version",
        ["document_id"],
        unique=True,
        postgresql_where=sa.text("superseded_at IS NULL"),
        sqlite_where=sa.text("superseded_at IS NULL"),
    )
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("document_id", sa.String(80), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_entry"),
    )
    op.create_index("ix_audit_entry_document_id", "audit_entry", ["document_id"])
    guards = PG_GUARDS if op.get_bind().dialect.name == "postgresql" else SQLITE_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entry_append_only ON audit_entry")
        op.execute("DROP TRIGGER document_version_immutable ON document_version")
        op.execute("DROP FUNCTION audit_entry_guard()")
        op.execute("DROP FUNCTION document_version_guard()")
    op.drop_table("audit_entry")
    op.drop_index("ux_document_version_current", "document_version")
    op.drop_table("document_version")
