"""The regions and matters as recorded over time are append-only, as document versions and the
audit log are: a past snapshot (`registry_as_of`) is computed from them, and a row changed or
removed would change what a calculation recomputed from that instant gives.

Revision ID: r0006
Revises: r0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "r0006"
down_revision: str | None = "r0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_GUARDS = [
    """CREATE FUNCTION reference_version_guard() RETURNS trigger AS $$
    BEGIN
      RAISE EXCEPTION 'reference versions are append-only';
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER reference_version_append_only BEFORE UPDATE OR DELETE ON reference_version
       FOR EACH ROW EXECUTE FUNCTION reference_version_guard()""",
]
SQLITE_GUARDS = [
    """CREATE TRIGGER reference_version_no_update BEFORE UPDATE ON reference_version
       BEGIN SELECT RAISE(ABORT, 'reference versions are append-only'); END""",
    """CREATE TRIGGER reference_version_no_delete BEFORE DELETE ON reference_version
       BEGIN SELECT RAISE(ABORT, 'reference versions are append-only'); END""",
]


def upgrade() -> None:
    guards = PG_GUARDS if op.get_bind().dialect.name == "postgresql" else SQLITE_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER reference_version_append_only ON reference_version")
        op.execute("DROP FUNCTION reference_version_guard()")
    else:
        op.execute("DROP TRIGGER reference_version_no_update")
        op.execute("DROP TRIGGER reference_version_no_delete")
