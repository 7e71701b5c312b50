"""Which database errors are an outage (503, retry) and which are bugs (500)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from subsidy_common.problems import database_unavailable


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        ConnectionResetError(),
        sa_exc.TimeoutError(),
        # A pooled connection whose backend was terminated, handed out once more.
        asyncpg.exceptions.InternalClientError("cannot switch to state 12"),
        asyncpg.exceptions.InterfaceError("connection is closed"),
    ],
)
def test_an_unreachable_or_full_database_is_an_outage(error: BaseException) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.UndefinedColumnError("column does not exist"),
        ValueError("a bug"),
    ],
)
def test_a_refused_statement_is_not_an_outage(error: BaseException) -> None:
    assert not database_unavailable(error)
