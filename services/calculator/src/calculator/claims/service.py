"""Claims: decided by the engine, granted once under the ledger's locks and constraints."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

import asyncpg
import orjson
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from subsidy_common.identifiers import mask_ric
from subsidy_common.problems import Conflict, DomainError, InvalidInput, NotFound, problem_type

from calculator.calculations import service as calculations
from calculator.calculations.schemas import CalculationIn
from calculator.claims import repository
from calculator.claims.locks import Locks
from calculator.claims.names import name_key, similar
from calculator.claims.schemas import ClaimIn
from calculator.engine.decide import decide
from calculator.engine.model import Result
from calculator.engine.rules import RuleSet

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRIES = 5
ZERO = Decimal(0)
Visibility = Literal["own", "all"]


class IdempotencyKeyMissing(DomainError):
    """A claim without an Idempotency-Key header."""

    type = problem_type("idempotency-key-missing")
    title = "Bad Request"
    status = 400


class IdempotencyKeyReused(InvalidInput):
    """The key was used before with a different body."""

    type = problem_type("idempotency-key-reused")


class IdempotencyKeyInFlight(Conflict):
    """The first request with this key is still being processed."""

    type = problem_type("idempotency-key-in-flight")


class ClaimNotFound(NotFound):
    """No claim with this id that the caller may see."""


class ClaimNotRevocable(Conflict):
    """Only a claim that paid something can be revoked, once."""


@dataclass(frozen=True, slots=True)
class Caller:
    """The tenant behind a request, as the gateway vouches for it."""

    tenant_id: str
    scope: str | None = None
    visibility: Visibility = "own"
    actor: str = ""


def request_hash(claim: ClaimIn) -> str:
    """A digest of the request's meaning, so reformatted JSON is the same body."""
    canonical = orjson.dumps(claim.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def _retrying(
    sessions: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run a transaction, again on a serialisation failure, deadlock or moved balance."""
    for attempt in range(RETRIES):
        async with sessions() as session:
            try:
                result = await work(session)
                await session.commit()
                return result
            except repository.LedgerMoved:
                await session.rollback()
            except (DBAPIError, asyncpg.exceptions.TransactionRollbackError) as exc:
                await session.rollback()
                cause = exc.orig if isinstance(exc, DBAPIError) else exc
                code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
                if code not in ("40001", "40P01") or attempt == RETRIES - 1:
                    raise
        log.info("claim transaction retried", extra={"attempt": attempt + 1})
    raise Conflict("The ledger was busy; retry the request with the same Idempotency-Key.")


async def submit(
    sessions: async_sessionmaker[AsyncSession],
    locks: Locks,
    *,
    caller: Caller,
    key: str | None,
    claim: ClaimIn,
    rules: RuleSet,
    today: dt.date,
    now: Callable[[], dt.datetime],
    check_scope: Callable[[CalculationIn, RuleSet, str | None], None],
) -> tuple[int, bytes]:
    """Decide and record a claim; replay the stored response for a key already used."""
    if not key:
        raise IdempotencyKeyMissing("A claim needs an Idempotency-Key header.")
    if len(key) > 255:
        raise InvalidInput(
            "The Idempotency-Key is too long.",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "at most 255 characters"}],
        )
    digest = request_hash(claim)
    request = CalculationIn(applicant=claim.applicant, events=[claim.event])

    async def work(session: AsyncSession) -> tuple[int, bytes]:
        async with locks.key(session, caller.tenant_id, key) as owned:
            if not owned:
                raise IdempotencyKeyInFlight(
                    "A request with this Idempotency-Key is still being processed."
                )
            stored = await repository.idempotent_response(session, caller.tenant_id, key)
            if stored is not None:
                if stored.request_hash != digest:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was used with a different request body.",
                        errors=[
                            {
                                "loc": ["header", "Idempotency-Key"],
                                "msg": "reused with another body",
                            }
                        ],
                    )
                return stored.status_code, stored.body
            applicant, events = calculations.validate(request, rules, today)
            check_scope(request, rules, caller.scope)
            at = now()
            async with locks.applicant(session, applicant.id):
                ledger = await repository.ledger_for(session, applicant.id)
                result = decide(applicant, events, rules, ledger).results[0]
                claim_id, body = await _record(
                    session, locks, caller, claim, applicant.id, result, rules, at
                )
            await repository.store_response(
                session,
                tenant_id=caller.tenant_id,
                key=key,
                request_hash=digest,
                status_code=201,
                body=body,
                claim_id=claim_id,
                now=at,
            )
            return 201, body

    return await _retrying(sessions, work)


async def _draw_on_fund(
    session: AsyncSession, locks: Locks, result: Result, due: Decimal
) -> tuple[Decimal, str | None, bool]:
    """Take a payment from its fund's budget when the fund has one; pay what is left of it.

    Most funds have no budget: one read says so without taking the fund's lock. A budget set
    meanwhile applies from the claims that read it, as if this one had come just before.
    """
    if due <= 0 or result.granted is None or result.granted.clause.funding_source is None:
        return due, None, False
    name = result.granted.clause.funding_source
    if await repository.fund(session, name) is None:
        return due, None, False
    async with locks.fund(session, name):
        row = await repository.fund(session, name)
        if row is None:
            return due, None, False
        left = max(ZERO, Decimal(row["budget"]) - Decimal(row["granted"]))
        paid = min(due, left)
        if paid > 0:
            await repository.move_fund(session, name, seen=Decimal(row["granted"]), delta=paid)
        return paid, name if paid > 0 else None, paid == 0


async def _record(
    session: AsyncSession,
    locks: Locks,
    caller: Caller,
    claim: ClaimIn,
    applicant_id: str,
    result: Result,
    rules: RuleSet,
    at: dt.datetime,
) -> tuple[str, bytes]:
    """Move the ledger for a decided event and write the claim; return its id and body."""
    event = claim.event
    due = result.amount if result.status == "eligible" else ZERO
    review = None
    if due > 0:
        key = name_key(claim.applicant.name)
        look_alikes = [
            {"claim_id": row["id"], "applicant_id": _shown(row), "name": row["applicant_name"]}
            for row in await repository.others_paid_for(
                session, applicant_id, event.matter, event.subject
            )
            if similar(key, row["name_key"])
        ]
        if look_alikes:
            review = {
                "similar_to": look_alikes,
                "reason": "同一事项与标的已由名称相近的其他主体获得",
            }
            due = ZERO
    due, fund, exhausted = await _draw_on_fund(session, locks, result, due)
    status = "budget_exhausted" if exhausted else _status(result, due, review)
    duplicate_of = (
        await repository.paid_claims(session, applicant_id, event.matter, event.subject)
        if status == "duplicate"
        else []
    )
    cap_key = None
    if due > 0:
        await repository.move_balance(
            session,
            applicant_id=applicant_id,
            matter=event.matter,
            subject=event.subject,
            seen=result.previously_granted,
            delta=due,
        )
        cap_key = await _move_caps(session, applicant_id, result, due)
    claim_id = str(uuid.uuid4())
    decision = calculations.render_result(result)
    values: dict[str, Any] = {
        "id": claim_id,
        "tenant_id": caller.tenant_id,
        "applicant_id": applicant_id,
        "applicant_kind": claim.applicant.kind,
        "applicant_name": claim.applicant.name,
        "name_key": name_key(claim.applicant.name),
        "region": claim.applicant.region,
        "matter": event.matter,
        "subject": event.subject,
        "event_date": event.date,
        "status": status,
        "initial_status": status,
        "amount": due,
        "entitlement": result.entitlement,
        "previously_granted": result.previously_granted,
        "cap_key": cap_key,
        "fund": fund,
        "duplicate_of": duplicate_of,
        "review": review,
        "decision": decision,
        "registry_version": rules.version,
        "created_at": at,
    }
    await repository.insert_claim(session, values)
    return claim_id, orjson.dumps(present(values))


def _status(result: Result, due: Decimal, review: dict[str, Any] | None) -> str:
    if result.status != "eligible":
        return result.status
    if review is not None:
        return "needs_review"
    if due > 0:
        return "topped_up" if result.previously_granted > 0 else "granted"
    return "duplicate"


async def _move_caps(
    session: AsyncSession, applicant_id: str, result: Result, due: Decimal
) -> str | None:
    if result.granted is None:
        return None
    clause = result.granted.clause
    caps = clause.caps
    if caps.cumulative is None and caps.per_applicant_year is None:
        return None
    cap_key = caps.cumulative_key or clause.id
    ledger = await repository.ledger_for(session, applicant_id)
    if caps.cumulative is not None:
        await repository.move_cap(
            session,
            applicant_id=applicant_id,
            cap_key=cap_key,
            year=0,
            seen=ledger.by_cap.get(cap_key, ZERO),
            delta=due,
        )
    if caps.per_applicant_year is not None:
        year = result.event.date.year
        await repository.move_cap(
            session,
            applicant_id=applicant_id,
            cap_key=cap_key,
            year=year,
            seen=ledger.by_cap_year.get((cap_key, year), ZERO),
            delta=due,
        )
    return cap_key


def _shown(row: Mapping[str, Any]) -> str:
    """Identity numbers of people are masked wherever they are shown."""
    applicant_id: str = row["applicant_id"]
    return mask_ric(applicant_id) if row["applicant_kind"] == "individual" else applicant_id


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value).quantize(Decimal('0.01'))}"


def present(row: Mapping[str, Any]) -> dict[str, Any]:
    """A claim as the API shows it (a person's identity number masked)."""
    created: dt.datetime = row["created_at"]
    revoked: dt.datetime | None = row.get("revoked_at")
    history: list[dict[str, Any]] = [{"status": row["initial_status"], "at": created.isoformat()}]
    if revoked is not None:
        history.append(
            {
                "status": "revoked",
                "at": revoked.isoformat(),
                "reason": row["revoke_reason"],
                "by": row["revoked_by"],
            }
        )
    return {
        "id": row["id"],
        "status": row["status"],
        "amount": _money(row["amount"]),
        "entitlement": _money(row["entitlement"]),
        "previously_granted": _money(row["previously_granted"]),
        "duplicate_of": row["duplicate_of"],
        "review": row["review"],
        "decision": row["decision"],
        "applicant": {
            "id": _shown(row),
            "kind": row["applicant_kind"],
            "name": row["applicant_name"],
            "region": row["region"],
        },
        "matter": row["matter"],
        "subject": row["subject"],
        "event_date": row["event_date"].isoformat(),
        "registry_version": row["registry_version"],
        "tenant": row["tenant_id"],
        "created_at": created.isoformat(),
        "history": history,
    }


def _visible(row: Any, caller: Caller) -> bool:
    return caller.visibility == "all" or row.tenant_id == caller.tenant_id


async def read(session: AsyncSession, claim_id: str, caller: Caller) -> dict[str, Any]:
    """One claim, if the caller may see it (another tenant's claim is as missing as none)."""
    row = await repository.get_claim(session, claim_id)
    if row is None or not _visible(row, caller):
        raise ClaimNotFound(f"No claim {claim_id!r}.")
    return present(row._mapping)


async def revoke(
    sessions: async_sessionmaker[AsyncSession],
    locks: Locks,
    *,
    claim_id: str,
    caller: Caller,
    reason: str,
    now: Callable[[], dt.datetime],
) -> bytes:
    """Take a grant back: the claim keeps its history and stops counting in the ledger."""

    async def work(session: AsyncSession) -> bytes:
        row = await repository.get_claim(session, claim_id)
        if row is None:
            raise ClaimNotFound(f"No claim {claim_id!r}.")
        async with locks.applicant(session, row.applicant_id):
            if not await repository.mark_revoked(
                session, claim_id, at=now(), by=caller.actor, reason=reason
            ):
                raise ClaimNotRevocable(
                    f"Claim {claim_id} has status {row.status}; only a paid claim is revoked."
                )
            ledger = await repository.ledger_for(session, row.applicant_id)
            amount = Decimal(row.amount)
            await repository.move_balance(
                session,
                applicant_id=row.applicant_id,
                matter=row.matter,
                subject=row.subject,
                seen=ledger.granted(row.matter, row.subject),
                delta=-amount,
            )
            if row.cap_key is not None:
                for (key, year), seen in [
                    ((row.cap_key, 0), ledger.by_cap.get(row.cap_key)),
                    (
                        (row.cap_key, row.event_date.year),
                        ledger.by_cap_year.get((row.cap_key, row.event_date.year)),
                    ),
                ]:
                    if seen is not None:
                        await repository.move_cap(
                            session,
                            applicant_id=row.applicant_id,
                            cap_key=key,
                            year=year,
                            seen=seen,
                            delta=-amount,
                        )
            if row.fund is not None:
                async with locks.fund(session, row.fund):
                    budget = await repository.fund(session, row.fund)
                    if budget is not None:
                        await repository.move_fund(
                            session, row.fund, seen=Decimal(budget["granted"]), delta=-amount
                        )
            updated = await repository.get_claim(session, claim_id)
            return orjson.dumps(present(updated._mapping))

    return await _retrying(sessions, work)
