"""Ledger queries and writes through SQLAlchemy Core: the claim path on SQLite, and revocation,
lists, budgets and ledger reads everywhere. A claim on PostgreSQL runs its own few statements
(`postgres.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import and_, func, literal, select, true, tuple_, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from calculator.claims.ledger import REVIEWED, LedgerMoved
from calculator.engine.model import EMPTY_LEDGER, Ledger
from calculator.models import CapBalance, Claim, FundBudget, IdempotencyRecord, LedgerBalance

balance = LedgerBalance.__table__  # type: ignore[attr-defined]
cap = CapBalance.__table__  # type: ignore[attr-defined]
claim = Claim.__table__  # type: ignore[attr-defined]
idempotency = IdempotencyRecord.__table__  # type: ignore[attr-defined]
fund_budget = FundBudget.__table__  # type: ignore[attr-defined]

PAID = ("granted", "topped_up")


async def driver(session: AsyncSession) -> asyncpg.Connection | None:
    """The asyncpg connection of a PostgreSQL session, inside its transaction; None on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    connection = await session.connection()
    raw: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection  # type: ignore[assignment]
    if not raw.is_in_transaction():  # SQLAlchemy begins on its first statement
        await connection.exec_driver_sql("SELECT 1")
    return raw


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# What a ledger read is asked for: (applicant, matter, subject) of each event to decide.
Wanted = Sequence[tuple[str, str, str]]

# kind 0: a (matter, subject) balance; kind 1: a cap balance, year 0 for the cumulative one;
# kind 2: what a (matter, subject) with a balance was paid under one cap (`c`), summed from its
# paid claims (a paid claim records the cap key its winner counts against; a revoked one is
# no longer paid).
# Only the balances of the subjects asked for: an applicant's other subjects do not change what
# its events are due, and an enterprise with years of grants has thousands of them.
# The arrays go as text[] literals (`text_array`), which PostgreSQL parses in C: asyncpg's own
# array encoding asks two abstract-base-class questions of every element in Python, 2 µs for a
# window's event, a twentieth of deciding it.
LEDGERS_SQL = """
WITH s AS (
  SELECT b.applicant_id, b.matter, b.subject, b.granted
    FROM unnest($1::text::text[], $2::text::text[], $3::text::text[])
         AS w(applicant_id, matter, subject)
    JOIN ledger_balance b
      ON b.applicant_id = w.applicant_id AND b.matter = w.matter AND b.subject = w.subject
)
SELECT applicant_id, 0 AS kind, matter AS a, subject AS b, 0 AS year, granted, '' AS c FROM s
UNION ALL
SELECT applicant_id, 1, cap_key, '', year, granted, ''
  FROM cap_balance WHERE applicant_id = ANY($1::text::text[])
UNION ALL
SELECT c.applicant_id, 2, c.matter, c.subject, 0, sum(c.amount), c.cap_key
  FROM s JOIN claim c
    ON c.applicant_id = s.applicant_id AND c.matter = s.matter AND c.subject = s.subject
 WHERE c.cap_key IS NOT NULL AND c.status IN ('granted', 'topped_up')
 GROUP BY c.applicant_id, c.matter, c.subject, c.cap_key
"""


def text_array(values: Sequence[str]) -> str:
    """A PostgreSQL text[] literal of the values: each quoted, `"` and `\\` escaped."""
    joined = "".join(values)
    if '"' in joined or "\\" in joined:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}' if values else "{}"


def ledgers_arguments(wanted: Wanted) -> tuple[str, str, str]:
    """LEDGERS_SQL's three arrays, each subject once."""
    unique = list(dict.fromkeys(wanted))
    return (
        text_array([w[0] for w in unique]),
        text_array([w[1] for w in unique]),
        text_array([w[2] for w in unique]),
    )


async def ledger_for(
    session: AsyncSession, applicant_id: str, subjects: Iterable[tuple[str, str]]
) -> Ledger:
    """What an applicant was granted for these (matter, subject) pairs, and under each of its
    caps, in one round trip."""
    wanted = [(applicant_id, matter, subject) for matter, subject in subjects]
    return (await ledgers_for(session, wanted)).get(applicant_id, EMPTY_LEDGER)


async def ledgers_for(session: AsyncSession, wanted: Wanted) -> dict[str, Ledger]:
    """The ledgers of these applicants as far as these subjects go, with all their caps, in one
    round trip; an applicant granted none of them is absent."""
    if (pg := await driver(session)) is not None:
        return ledgers(await pg.fetch(LEDGERS_SQL, *ledgers_arguments(wanted)))
    ids = list(dict.fromkeys(w[0] for w in wanted))
    subjects = select(
        balance.c.applicant_id,
        literal(0).label("kind"),
        balance.c.matter.label("a"),
        balance.c.subject.label("b"),
        literal(0).label("year"),
        balance.c.granted,
        literal("").label("c"),
    ).where(
        tuple_(balance.c.applicant_id, balance.c.matter, balance.c.subject).in_(
            list(dict.fromkeys(wanted))
        )
    )
    caps = select(
        cap.c.applicant_id,
        literal(1).label("kind"),
        cap.c.cap_key.label("a"),
        literal("").label("b"),
        cap.c.year,
        cap.c.granted,
        literal("").label("c"),
    ).where(cap.c.applicant_id.in_(ids))
    under_caps = (
        select(
            claim.c.applicant_id,
            literal(2).label("kind"),
            claim.c.matter.label("a"),
            claim.c.subject.label("b"),
            literal(0).label("year"),
            func.sum(claim.c.amount).label("granted"),
            claim.c.cap_key.label("c"),
        )
        .where(
            tuple_(claim.c.applicant_id, claim.c.matter, claim.c.subject).in_(
                list(dict.fromkeys(wanted))
            ),
            claim.c.cap_key.is_not(None),
            claim.c.status.in_(PAID),
        )
        .group_by(claim.c.applicant_id, claim.c.matter, claim.c.subject, claim.c.cap_key)
    )
    return ledgers(await session.execute(union_all(subjects, caps, under_caps)))


def ledgers(rows: Iterable[Any]) -> dict[str, Ledger]:
    """Rows of LEDGERS_SQL (or its SQLAlchemy form) gathered into one Ledger per applicant."""
    parts: dict[
        str,
        tuple[
            dict[tuple[str, str], Decimal],
            dict[str, Decimal],
            dict[tuple[str, int], Decimal],
            dict[tuple[str, str, str], Decimal],
        ],
    ] = {}
    for applicant_id, kind, a, b, year, granted, c in rows:
        by_subject, by_cap, by_cap_year, by_subject_cap = parts.setdefault(
            applicant_id, ({}, {}, {}, {})
        )
        if kind == 0:
            by_subject[(a, b)] = granted
        elif kind == 2:
            by_subject_cap[(a, b, c)] = Decimal(granted)
        elif year == 0:
            by_cap[a] = granted
        else:
            by_cap_year[(a, year)] = granted
    return {
        applicant_id: Ledger(by_subject=s, by_cap=c, by_cap_year=y, by_subject_cap=sc)
        for applicant_id, (s, c, y, sc) in parts.items()
    }


async def move_balance(
    session: AsyncSession,
    *,
    applicant_id: str,
    matter: str,
    subject: str,
    seen: Decimal,
    delta: Decimal,
) -> None:
    """Add to a subject's balance if it still holds what was read (compare and set)."""
    key = {"applicant_id": applicant_id, "matter": matter, "subject": subject}
    await _move(session, balance, key, seen, delta)


async def move_cap(
    session: AsyncSession,
    *,
    applicant_id: str,
    cap_key: str,
    year: int,
    seen: Decimal,
    delta: Decimal,
) -> None:
    """Add to a cap's balance if it still holds what was read."""
    key = {"applicant_id": applicant_id, "cap_key": cap_key, "year": year}
    await _move(session, cap, key, seen, delta)


async def _move(
    session: AsyncSession, table: Any, key: dict[str, Any], seen: Decimal, delta: Decimal
) -> None:
    """Insert a balance row or add to it, only if it still holds `seen`."""
    what = " ".join(str(v) for v in key.values())
    if delta < 0:  # taking back: the row exists, and an insert would trip the CHECK first
        where = and_(*(table.c[name] == value for name, value in key.items()))
        await _compare_and_set(session, table, where, seen, delta, what)
        return
    statement = (
        _insert(session, table)
        .values(**key, granted=delta)
        .on_conflict_do_update(
            index_elements=[table.c[name] for name in key],
            set_={"granted": table.c.granted + delta},
            where=table.c.granted == seen,
        )
        .returning(table.c.granted)
    )
    if (await session.execute(statement)).first() is None:
        raise LedgerMoved(what)


async def _compare_and_set(
    session: AsyncSession, table: Any, where: Any, seen: Decimal, delta: Decimal, what: str
) -> None:
    statement = (
        update(table)
        .where(where, table.c.granted == seen)
        .values(granted=table.c.granted + delta)
        .returning(table.c.granted)
    )
    if (await session.execute(statement)).first() is None:
        raise LedgerMoved(what)


async def paid_claims(
    session: AsyncSession, applicant_id: str, matter: str, subject: str
) -> list[str]:
    """The ids of the claims that paid something for this (applicant, matter, subject)."""
    rows = await session.execute(
        select(claim.c.id)
        .where(
            claim.c.applicant_id == applicant_id,
            claim.c.matter == matter,
            claim.c.subject == subject,
            claim.c.status.in_(PAID),
        )
        .order_by(claim.c.created_at)
    )
    return [row.id for row in rows]


async def others_paid_for(
    session: AsyncSession, applicant_id: str, matter: str, subject: str
) -> list[Mapping[str, Any]]:
    """Paid claims for the same matter and subject under other applicant identifiers."""
    rows = await session.execute(
        select(
            claim.c.id,
            claim.c.tenant_id,
            claim.c.applicant_id,
            claim.c.applicant_kind,
            claim.c.applicant_name,
            claim.c.name_key,
            claim.c.created_at,
        ).where(
            claim.c.matter == matter,
            claim.c.subject == subject,
            claim.c.applicant_id != applicant_id,
            claim.c.status.in_(PAID),
        )
    )
    return [dict(row._mapping) for row in rows]


async def own_claims(
    session: AsyncSession, applicant_id: str, matter: str, subject: str
) -> list[dict[str, Any]]:
    """This applicant's claims for the matter and subject that tell what reviews of it stand
    (`ledger.reviewed`)."""
    rows = (
        await session.execute(
            select(
                claim.c.status,
                claim.c.name_key,
                claim.c.created_at,
                claim.c.revoked_at,
                claim.c.review,
            ).where(
                claim.c.applicant_id == applicant_id,
                claim.c.matter == matter,
                claim.c.subject == subject,
                claim.c.status.in_(REVIEWED),
            )
        )
    ).all()
    return [
        {
            "status": row.status,
            "name_key": row.name_key,
            "created_at": row.created_at,
            "revoked_at": row.revoked_at,
            "decided_at": ((row.review or {}).get("decided") or {}).get("at"),
        }
        for row in rows
    ]


async def insert_claim(session: AsyncSession, values: dict[str, Any]) -> None:
    """Record a claim."""
    await session.execute(claim.insert().values(**values))


async def idempotent_response(
    session: AsyncSession, tenant_id: str, key: str
) -> IdempotencyRecord | None:
    """The stored first response to a key."""
    row = (
        await session.execute(
            select(idempotency).where(
                idempotency.c.tenant_id == tenant_id, idempotency.c.key == key
            )
        )
    ).first()
    return IdempotencyRecord(**row._mapping) if row is not None else None


async def store_response(
    session: AsyncSession,
    *,
    tenant_id: str,
    key: str,
    request_hash: str,
    status_code: int,
    body: bytes,
    claim_id: str,
    now: dt.datetime,
) -> None:
    """Keep the response to replay it, in the same transaction as the grant."""
    await session.execute(
        idempotency.insert().values(
            tenant_id=tenant_id,
            key=key,
            request_hash=request_hash,
            status_code=status_code,
            body=body,
            claim_id=claim_id,
            created_at=now,
        )
    )


async def get_claim(session: AsyncSession, claim_id: str, *, lock: bool = False) -> Any:
    """One claim row, or None."""
    statement = select(claim).where(claim.c.id == claim_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.execute(statement)).first()


async def list_claims(
    session: AsyncSession,
    *,
    tenant_id: str | None,
    applicant_id: str | None,
    matter: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> Sequence[Any]:
    """Claims in the order of their ids, from the one after the cursor, filtered: a page never
    repeats or skips a claim that existed when the listing began."""
    conditions = []
    if tenant_id is not None:
        conditions.append(claim.c.tenant_id == tenant_id)
    if applicant_id is not None:
        conditions.append(claim.c.applicant_id == applicant_id)
    if matter is not None:
        conditions.append(claim.c.matter == matter)
    if status is not None:
        conditions.append(claim.c.status == status)
    if after is not None:
        conditions.append(claim.c.id > after)
    statement = select(claim).where(and_(true(), *conditions)).order_by(claim.c.id).limit(limit)
    return (await session.execute(statement)).all()


async def mark_revoked(
    session: AsyncSession, claim_id: str, *, at: dt.datetime, by: str, reason: str
) -> bool:
    """Mark a paid claim revoked, once; False when it was not in a paid state."""
    result = await session.execute(
        update(claim)
        .where(claim.c.id == claim_id, claim.c.status.in_(PAID))
        .values(status="revoked", revoked_at=at, revoked_by=by, revoke_reason=reason)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_reviewed(
    session: AsyncSession, claim_id: str, *, status: str, review: dict[str, Any]
) -> bool:
    """Record the review of a claim held for it, once; False when it was not held."""
    result = await session.execute(
        update(claim)
        .where(claim.c.id == claim_id, claim.c.status == "needs_review")
        .values(status=status, review=review)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fund(session: AsyncSession, name: str) -> Mapping[str, Any] | None:
    """A fund's budget row, or None when the fund has no budget."""
    row = (await session.execute(select(fund_budget).where(fund_budget.c.fund == name))).first()
    return dict(row._mapping) if row is not None else None


async def move_fund(session: AsyncSession, name: str, *, seen: Decimal, delta: Decimal) -> None:
    """Add to what a fund has granted if it still holds what was read and, for a grant, the
    budget as it stands now still allows it (a revocation gives back whatever the budget)."""
    where = fund_budget.c.fund == name
    if delta > 0:
        where &= fund_budget.c.granted + delta <= fund_budget.c.budget
    await _compare_and_set(session, fund_budget, where, seen, delta, name)


async def set_budget(
    session: AsyncSession, name: str, *, budget: Decimal, by: str, reason: str, at: dt.datetime
) -> None:
    """Create a fund's budget or change it; what it granted so far stays."""
    statement = _insert(session, fund_budget).values(
        fund=name, budget=budget, granted=Decimal(0), updated_at=at, updated_by=by, reason=reason
    )
    statement = statement.on_conflict_do_update(
        index_elements=[fund_budget.c.fund],
        set_={"budget": budget, "updated_at": at, "updated_by": by, "reason": reason},
    )
    await session.execute(statement)


async def funds(session: AsyncSession) -> Sequence[Any]:
    """Every budgeted fund."""
    return (await session.execute(select(fund_budget).order_by(fund_budget.c.fund))).all()
