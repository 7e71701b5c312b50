"""A claim on PostgreSQL, on asyncpg: two round trips first, five with the locks if need be.

A first attempt takes no lock. It reads everything the decision needs in one statement, and
writes in one statement: the balance moves by compare-and-set, the claim and the stored response.
A claim that pays also counts one more payment for its matter and subject, whoever the applicant
(`subject_payment`), by compare-and-set too: two applicants paid at once for one subject would
each have found no look-alike among the other's claims. That statement first tries the key's,
the applicant's (the subject's, the fund's) locks, touches no row unless all were free, and ends
in `claim_settled`, which fails it whole when a locked claim or a revocation holds one of those
locks or a balance moved since the read. Each statement commits by itself. Most claims meet no
other for the same applicant and are done in those two round trips.

A claim that was refused is tried again with the locks, inside one transaction: BEGIN; the
key's, the subject's and the applicant's advisory locks in one statement; the same read (after
the locks, so it sees what the previous holder committed); the same write; COMMIT. A budgeted
fund adds its lock and its read. A locked claim never loses its compare-and-set to an unlocked
one: the unlocked write cannot commit while the lock is held.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
from subsidy_common.problems import ServiceUnavailable

from calculator.claims.ledger import (
    REVIEWED,
    ClaimTransaction,
    LedgerMoved,
    Move,
    Response,
    Seen,
    Stored,
    reviewed,
)
from calculator.claims.locks import applicant_lock, fund_lock, key_lock, subject_lock
from calculator.db import driver_pool
from calculator.engine.model import Ledger

if TYPE_CHECKING:
    Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

# The subject's and the applicant's locks only once the key is owned: a request whose key is in
# flight answers 409 at once instead of queueing behind them. CASE takes them in this order.
_OWN = """
SELECT CASE WHEN pg_try_advisory_xact_lock(hashtextextended($1, 0))
            THEN CASE WHEN (SELECT true FROM pg_advisory_xact_lock(hashtextextended($2, 0)))
                      THEN (SELECT true FROM pg_advisory_xact_lock(hashtextextended($3, 0))) END
            ELSE false END
"""
_READ = """
SELECT
  (SELECT r FROM idempotency_record r WHERE r.tenant_id = $1 AND r.key = $2) AS stored,
  ARRAY(SELECT b FROM ledger_balance b
         WHERE b.applicant_id = $3 AND b.matter = $4 AND b.subject = $5) AS subjects,
  ARRAY(SELECT c FROM cap_balance c WHERE c.applicant_id = $3) AS caps,
  ARRAY(SELECT id FROM claim
         WHERE applicant_id = $3 AND matter = $4 AND subject = $5
           AND status IN ('granted', 'topped_up') ORDER BY created_at) AS paid,
  (SELECT json_agg(json_build_object('id', id, 'tenant_id', tenant_id,
          'applicant_id', applicant_id,
          'applicant_kind', applicant_kind, 'applicant_name', applicant_name,
          'name_key', name_key, 'created_at', created_at))
     FROM claim
    WHERE matter = $4 AND subject = $5 AND applicant_id <> $3
      AND status IN ('granted', 'topped_up')) AS others,
  (SELECT json_agg(json_build_object('status', status, 'name_key', name_key,
          'created_at', created_at, 'revoked_at', revoked_at,
          'decided_at', review -> 'decided' ->> 'at'))
     FROM claim
    WHERE applicant_id = $3 AND matter = $4 AND subject = $5
      AND status IN ({reviewed})) AS own,
  ARRAY(SELECT fund FROM fund_budget) AS budgeted,
  (SELECT json_object_agg(cap_key, granted) FROM (
     SELECT cap_key, sum(amount)::text AS granted FROM claim
      WHERE applicant_id = $3 AND matter = $4 AND subject = $5 AND cap_key IS NOT NULL
        AND status IN ('granted', 'topped_up')
      GROUP BY cap_key) AS paid_under) AS under_caps,
  (SELECT payments FROM subject_payment WHERE matter = $4 AND subject = $5) AS payments
""".format(reviewed=", ".join(f"'{status}'" for status in REVIEWED))  # noqa: S608
_BUDGET = "SELECT budget, granted FROM fund_budget WHERE fund = $1"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"

# Compare-and-set additions; the parameters are the balance's key, then `seen`, then `delta`.
# Each touches its row only where `l.free`: the locks tried before any row is (`_write_sql`).
_ADD = {
    "subject": """INSERT INTO ledger_balance (applicant_id, matter, subject, granted)
        SELECT $1, $2, $3, $5 WHERE (SELECT free FROM l)
        ON CONFLICT (applicant_id, matter, subject) DO UPDATE
        SET granted = ledger_balance.granted + $5 WHERE ledger_balance.granted = $4
        RETURNING 1""",
    "cap": """INSERT INTO cap_balance (applicant_id, cap_key, year, granted)
        SELECT $1, $2, $3, $5 WHERE (SELECT free FROM l)
        ON CONFLICT (applicant_id, cap_key, year) DO UPDATE
        SET granted = cap_balance.granted + $5 WHERE cap_balance.granted = $4
        RETURNING 1""",
    # (matter, subject), then the payments read and 1.
    "payments": """INSERT INTO subject_payment (matter, subject, payments)
        SELECT $1, $2, $4 WHERE (SELECT free FROM l)
        ON CONFLICT (matter, subject) DO UPDATE
        SET payments = subject_payment.payments + $4 WHERE subject_payment.payments = $3
        RETURNING 1""",
    # Within the budget as it stands when the row is written: a cut committed since the read
    # refuses the write, and the retry reads the budget again.
    "fund": """UPDATE fund_budget SET granted = granted + $3
        WHERE fund = $1 AND granted = $2 AND granted + $3 <= budget AND (SELECT free FROM l)
        RETURNING 1""",
}
_JSON_COLUMNS = frozenset({"duplicate_of", "review", "decision"})
CLAIM_COLUMNS = (
    "id", "tenant_id", "applicant_id", "applicant_kind", "applicant_name", "name_key", "region",
    "matter", "subject", "event_date", "status", "initial_status", "amount", "entitlement",
    "previously_granted", "cap_key", "fund", "duplicate_of", "review", "decision",
    "registry_version", "created_at", "cumulative_cap_moved", "yearly_cap_moved",
)  # fmt: skip
_RECORD = """INSERT INTO claim (id, tenant_id, applicant_id, applicant_kind, applicant_name,
    name_key, region, matter, subject, event_date, status, initial_status, amount, entitlement,
    previously_granted, cap_key, fund, duplicate_of, review, decision, registry_version,
    created_at, cumulative_cap_moved, yearly_cap_moved)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
    $18::json, $19::json, $20::json, $21, $22, $23, $24)"""
_KEEP = """INSERT INTO idempotency_record
    (tenant_id, key, request_hash, status_code, body, claim_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)"""
_PARAMETER = re.compile(r"\$(\d+)")


def _parameters(statement: str) -> int:
    return max(int(n) for n in _PARAMETER.findall(statement))


def _shifted(statement: str, by: int) -> str:
    return _PARAMETER.sub(lambda m: f"${int(m.group(1)) + by}", statement)


@functools.cache
def _write_sql(balances: tuple[str, ...], try_locks: int) -> str:
    """One statement for these moves, the claim and the response. It fails (serialisation
    failure) unless each of the `try_locks` locks named after the other parameters was free and
    every balance moved (one that no longer holds what was read does not).

    The locks are tried first (`l`) and a balance is touched only if all were free, so the
    statement never waits for a row that a lock holder has written: a revocation holding the
    applicant's balance and waiting for the fund's, which this statement would otherwise have
    moved first, made a deadlock. The claim and the response (`c`, `r`), which no one reads,
    are written after `claim_settled` has passed."""
    free = " AND ".join(
        f"pg_try_advisory_xact_lock(hashtextextended(${i + 1}, 0))" for i in range(try_locks)
    )
    parts, offset = [f"l AS (SELECT {free or 'true'} AS free)"], try_locks
    for i, balance in enumerate(balances):
        parts.append(f"m{i} AS ({_shifted(_ADD[balance], offset)})")
        offset += _parameters(_ADD[balance])
    parts.append(f"c AS ({_shifted(_RECORD, offset)})")
    offset += _parameters(_RECORD)
    parts.append(f"r AS ({_shifted(_KEEP, offset)})")
    moved = " + ".join(f"(SELECT count(*) FROM m{i})" for i in range(len(balances))) or "0"  # noqa: S608
    free_of_l = "(SELECT free FROM l)"
    return (
        "WITH " + ",\n".join(parts)
        + f"\nSELECT claim_settled({moved}, {len(balances)}, {free_of_l})"
    )  # fmt: skip


def _ledger(
    subjects: Sequence[Mapping[str, Any]],
    caps: Sequence[Mapping[str, Any]],
    matter: str,
    subject: str,
    under_caps: str | None,
) -> Ledger:
    paid_under: dict[str, str] = orjson.loads(under_caps) if under_caps is not None else {}
    return Ledger(
        by_subject={(r["matter"], r["subject"]): r["granted"] for r in subjects},
        by_cap={r["cap_key"]: r["granted"] for r in caps if r["year"] == 0},
        by_cap_year={(r["cap_key"], r["year"]): r["granted"] for r in caps if r["year"] != 0},
        by_subject_cap={(matter, subject, k): Decimal(v) for k, v in paid_under.items()},
    )


class PostgresTransaction(ClaimTransaction):
    """One claim's statements on one connection: inside its transaction, holding the locks; or
    optimistic, each statement committing by itself and the write checking for the locks."""

    def __init__(self, connection: Connection, *, optimistic: bool = False) -> None:
        self._connection = connection
        self._optimistic = optimistic
        self._payments = 0  # of the matter and subject read, to any applicant

    async def own(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> bool:
        if self._optimistic:
            return True  # nothing held: the write tries the locks
        owned = await self._connection.fetchval(
            _OWN,
            key_lock(tenant_id, key),
            subject_lock(matter, subject),
            applicant_lock(applicant_id),
        )
        return bool(owned)

    async def read(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> Seen:
        row = await self._connection.fetchrow(_READ, tenant_id, key, applicant_id, matter, subject)
        assert row is not None  # a SELECT without FROM returns one row
        stored = row["stored"]
        self._payments = row["payments"] or 0
        held_names, cleared_at = reviewed(orjson.loads(row["own"]) if row["own"] else ())
        return Seen(
            stored=None
            if stored is None
            else Stored(stored["request_hash"], stored["status_code"], stored["body"]),
            ledger=_ledger(row["subjects"], row["caps"], matter, subject, row["under_caps"]),
            paid=list(row["paid"]),
            others=orjson.loads(row["others"]) if row["others"] is not None else [],
            held_names=held_names,
            cleared_at=cleared_at,
            budgeted=frozenset(row["budgeted"]),
        )

    async def budget(self, fund: str) -> tuple[Decimal, Decimal] | None:
        if not self._optimistic:
            await self._connection.execute(_LOCK, fund_lock(fund))
        row = await self._connection.fetchrow(_BUDGET, fund)
        return None if row is None else (row["budget"], row["granted"])

    async def write(
        self, moves: Sequence[Move], claim: Mapping[str, Any], response: Response
    ) -> None:
        # A claim held for review counts as a payment does: a claim of the same applicant
        # read before it was written would otherwise be paid, under another name.
        counted = claim["amount"] > 0 or claim["status"] == "needs_review"
        locks = []
        if self._optimistic:
            # The locks a locked claim holds from its first statement to its commit.
            locks.append(key_lock(response.tenant_id, response.key))
            if counted:
                locks.append(subject_lock(claim["matter"], claim["subject"]))
            locks.append(applicant_lock(claim["applicant_id"]))
            locks.extend(fund_lock(str(m.key[0])) for m in moves if m.balance == "fund")
        arguments: list[Any] = list(locks)
        balances: list[str] = [move.balance for move in moves]
        for move in moves:
            arguments.extend((*move.key, move.seen, move.delta))
        if counted:
            balances.append("payments")
            arguments.extend((claim["matter"], claim["subject"], self._payments, 1))
        arguments.extend(
            orjson.dumps(claim[c]).decode() if c in _JSON_COLUMNS else claim[c]
            for c in CLAIM_COLUMNS
        )
        arguments.extend(
            (
                response.tenant_id,
                response.key,
                response.request_hash,
                response.status_code,
                response.body,
                response.claim_id,
                claim["created_at"],
            )
        )
        statement = _write_sql(tuple(balances), len(locks))
        try:
            await self._connection.fetchval(statement, *arguments)
        except asyncpg.exceptions.UniqueViolationError as exc:
            if not self._optimistic:
                raise
            # The same key, written by another request meanwhile: the locked retry replays it.
            raise LedgerMoved(f"idempotency key {response.key}") from exc


# What a connection lost mid-transaction raises (its backend ended by pg_terminate_backend, a
# restart, a failover; InternalClientError when it is asked again before the driver has caught
# up): the error that lost it is the one to report.
_LOST = (
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.PostgresConnectionError,
    OSError,
)


def _discard(connection: Any) -> None:
    """Close a lost connection, so that the pool opens another rather than hand it out again;
    one the driver has already closed has left the pool by itself."""
    with contextlib.suppress(asyncpg.exceptions.InterfaceError):
        connection.terminate()


class PostgresClaims:
    """Claims on an asyncpg pool of their own."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    @classmethod
    async def open(
        cls, dsn: str, *, max_size: int = 20, acquire_timeout: float = 5.0
    ) -> PostgresClaims:
        """Claims on a pool of their own for this libpq DSN."""
        return cls(await driver_pool(dsn, max_size=max_size), acquire_timeout)

    @asynccontextmanager
    async def transaction(self, *, optimistic: bool = False) -> AsyncIterator[ClaimTransaction]:
        try:
            connection = await self._pool.acquire(timeout=self._acquire_timeout)
        except TimeoutError as exc:
            raise ServiceUnavailable(
                "Every database connection is busy; retry shortly.", retry_after=1
            ) from exc
        if optimistic:
            try:
                yield PostgresTransaction(connection, optimistic=True)
            except _LOST:
                _discard(connection)
                raise
            finally:
                await self._pool.release(connection)
            return
        try:
            transaction = connection.transaction()
            await transaction.start()
            try:
                yield PostgresTransaction(connection)
            except BaseException:
                try:
                    await transaction.rollback()
                except _LOST:  # a lost connection rolled back by itself
                    _discard(connection)
                raise
            await transaction.commit()
        finally:
            await self._pool.release(connection)

    async def close(self) -> None:
        await self._pool.close()
