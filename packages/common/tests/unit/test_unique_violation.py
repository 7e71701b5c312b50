"""A unique constraint that refuses a row written at the same time is a conflict, not a bug."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from subsidy_common.problems import unique_violation


@pytest.mark.parametrize(
    ("error", "unique"),
    [
        (
            sa_exc.IntegrityError(
                "INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed: t.name")
            ),
            True,
        ),
        (
            sa_exc.IntegrityError(
                "INSERT",
                {},
                Exception('duplicate key value violates unique constraint "uq_tenant_name"'),
            ),
            True,
        ),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), True),
        (
            sa_exc.IntegrityError(
                "INSERT", {}, sqlite3.IntegrityError("NOT NULL constraint failed: t.name")
            ),
            False,
        ),
        (
            sa_exc.IntegrityError("INSERT", {}, Exception('violates foreign key constraint "fk"')),
            False,
        ),
        (sa_exc.OperationalError("SELECT", {}, Exception("connection refused")), False),
    ],
)
def test_only_a_unique_constraint_is_a_conflict(error: BaseException, unique: bool) -> None:
    assert unique_violation(error) is unique
