"""Ledger queries and writes, in SQLAlchemy Core on the hot path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, literal, select, true, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from calculator.engine.model import Ledger
from calculator.models import CapBalance, Claim, FundBudget, IdempotencyRecord, LedgerBalance

balance = LedgerBalance.__table__  # type: ignore[attr-defined]
cap = CapBalance.__table__  # type: ignore[attr-defined]
claim = Claim.__table__  # type: ignore[attr-defined]
idempotency = IdempotencyRecord.__table__  # type: ignore[attr-defined]
fund_budget = FundBudget.__table__  # type: ignore[attr-defined]

PAID = ("granted", "topped_up")


class LedgerMoved(Exception):
    """A balance changed between its read and its update: the transaction must start again."""


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def ledger_for(session: AsyncSession, applicant_id: str) -> Ledger:
    """Everything granted to an applicant, by subject and by cap, in one round trip."""
    subjects = select(
        literal("subject").label("kind"),
        balance.c.matter.label("a"),
        balance.c.subject.label("b"),
        literal(0).label("year"),
        balance.c.granted,
    ).where(balance.c.applicant_id == applicant_id)
    caps = select(
        literal("cap").label("kind"),
        cap.c.cap_key.label("a"),
        literal("").label("b"),
        cap.c.year,
        cap.c.granted,
    ).where(cap.c.applicant_id == applicant_id)
    by_subject: dict[tuple[str, str], Decimal] = {}
    by_cap: dict[str, Decimal] = {}
    by_cap_year: dict[tuple[str, int], Decimal] = {}
    for kind, a, b, year, granted in await session.execute(union_all(subjects, caps)):
        if kind == "subject":
            by_subject[(a, b)] = granted
        elif year == 0:
            by_cap[a] = granted
        else:
            by_cap_year[(a, year)] = granted
    return Ledger(by_subject=by_subject, by_cap=by_cap, by_cap_year=by_cap_year)


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
) -> Sequence[Any]:
    """Paid claims for the same matter and subject under other applicant identifiers."""
    rows = await session.execute(
        select(
            claim.c.id,
            claim.c.applicant_id,
            claim.c.applicant_kind,
            claim.c.applicant_name,
            claim.c.name_key,
        ).where(
            claim.c.matter == matter,
            claim.c.subject == subject,
            claim.c.applicant_id != applicant_id,
            claim.c.status.in_(PAID),
        )
    )
    return rows.all()


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
    """Claims newest first (by id order within a cursor), filtered."""
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


async def fund(session: AsyncSession, name: str) -> Any:
    """A fund's budget row, or None when the fund has no budget."""
    return (await session.execute(select(fund_budget).where(fund_budget.c.fund == name))).first()


async def move_fund(session: AsyncSession, name: str, *, seen: Decimal, delta: Decimal) -> None:
    """Add to what a fund has granted if it still holds what was read."""
    await _compare_and_set(session, fund_budget, fund_budget.c.fund == name, seen, delta, name)


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
