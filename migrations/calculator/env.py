"""Alembic environment of the calculator service."""

from __future__ import annotations

from subsidy_common.migrations import run_migrations

run_migrations("calculator", None)
