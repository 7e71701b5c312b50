"""Baseline: the calculator's own database, which the claims ledger fills.

Revision ID: c0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "c0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing yet: the ledger's tables come in their own migration."""


def downgrade() -> None:
    """Nothing to undo."""
