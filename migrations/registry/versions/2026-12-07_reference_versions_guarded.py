"""The regions and matters as recorded over time are append-only, as document versions and the
audit log are: a past snapshot (`registry_as_of`) is computed from them, and a row changed or
removed would change what a calculation recomputed from that instant gives.

Revision ID: r0006
Revises: r0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from subsidy_common.migrations import add_append_only_guard, drop_append_only_guard

revision: str = "r0006"
down_revision: str | None = "r0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    add_append_only_guard("reference_version", "reference versions are append-only")


def downgrade() -> None:
    drop_append_only_guard("reference_version")
