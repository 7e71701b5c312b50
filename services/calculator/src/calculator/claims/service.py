"""Claims: decided by the engine, granted once under the ledger's locks and constraints."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

import asyncpg
import orjson
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from subsidy_common.identifiers import (
    is_ric,
    mask_ric,
    names_one_thing,
    normalise,
    subject_key,
)
from subsidy_common.problems import Conflict, DomainError, InvalidInput, NotFound, problem_type

from calculator.calculations import service as calculations
from calculator.calculations.schemas import CalculationIn
from calculator.claims import repository
from calculator.claims.ledger import (
    Claims,
    ClaimTransaction,
    LedgerMoved,
    Move,
    Response,
    Seen,
    instant,
)
from calculator.claims.locks import Locks
from calculator.claims.names import may_be_one, name_key
from calculator.claims.schemas import ClaimIn
from calculator.engine.model import Ledger, Result
from calculator.engine.rules import RuleSet

log = logging.getLogger(__name__)

T = TypeVar("T")
X = TypeVar("X")
RETRIES = 5
ZERO = Decimal(0)
LEDGER_BOUND = Decimal(10) ** 12  # the ledger's columns are NUMERIC(14, 2)
# The policies' own calendar: an event's date is a date in China, which keeps no summer time.
CHINA = dt.timezone(dt.timedelta(hours=8), "CST")
Visibility = Literal["own", "all"]

# The matters whose subject is a patent (matters.md: `patent.*`).
PATENT_MATTERS = "patent."


class IdempotencyKeyMissing(DomainError):
    """A claim without an Idempotency-Key header."""

    type = problem_type("idempotency-key-missing")
    title = "Bad Request"
    status = 400


class IdempotencyKeyReused(InvalidInput):
    """The key was used before with a different body."""

    type = problem_type("idempotency-key-reused")


class AmountBeyondLedger(InvalidInput):
    """An entitlement larger than the ledger's columns hold."""


class EventNotYetHappened(InvalidInput):
    """A claim for an event dated after today: nothing is paid for what has not happened."""


def china_today(now: dt.datetime) -> dt.date:
    """The date in China at an instant: the day a claim's event may be at most."""
    return now.astimezone(CHINA).date()


class IdempotencyKeyInFlight(Conflict):
    """The first request with this key is still being processed: retry after a moment."""

    type = problem_type("idempotency-key-in-flight")

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


class ClaimNotFound(NotFound):
    """No claim with this id that the caller may see."""


class ClaimNotRevocable(Conflict):
    """Only a claim that paid something can be revoked, once."""


class ClaimNotReviewable(Conflict):
    """Only a claim held for review is reviewed, once."""


@dataclass(frozen=True, slots=True)
class Caller:
    """The tenant behind a request, as the gateway vouches for it."""

    tenant_id: str
    scope: str | None = None
    visibility: Visibility = "own"
    actor: str = ""


def request_hash(claim: ClaimIn) -> str:
    """A digest of the request's meaning, so reformatted JSON is the same body."""
    meaning = claim.model_dump(mode="json")
    try:
        canonical = orjson.dumps(meaning, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, which the validation after this refuses
        canonical = json.dumps(meaning, sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()


async def _retrying(
    transaction: Callable[[int], AbstractAsyncContextManager[X]],
    work: Callable[[X], Awaitable[T]],
) -> T:
    """Run a transaction (given its attempt, from 0), again on a serialisation failure,
    deadlock or moved balance."""
    for attempt in range(RETRIES):
        try:
            async with transaction(attempt) as tx:
                return await work(tx)
        except LedgerMoved:
            pass
        except (DBAPIError, asyncpg.exceptions.TransactionRollbackError) as exc:
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
            if code not in ("40001", "40P01") or attempt == RETRIES - 1:
                raise
        log.info("claim transaction retried", extra={"attempt": attempt + 1})
    raise Conflict("The ledger was busy; retry the request with the same Idempotency-Key.")


async def submit(
    claims: Claims,
    *,
    caller: Caller,
    key: str | None,
    claim: ClaimIn,
    rules: RuleSet,
    today: dt.date,
    now: Callable[[], dt.datetime],
    check_scope: Callable[[CalculationIn, RuleSet, str | None], None],
) -> tuple[int, bytes]:
    """Decide and record a claim; replay the stored response for a key already used.

    `today` is the date in China (`china_today`): an event after it is refused."""
    if not key:
        raise IdempotencyKeyMissing("A claim needs an Idempotency-Key header.")
    if len(key) > 255:
        raise InvalidInput(
            "The Idempotency-Key is too long.",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "at most 255 characters"}],
        )
    digest = request_hash(claim)
    request = CalculationIn(applicant=claim.applicant, events=[claim.event])
    event = claim.event
    # The canonical forms of a valid identifier and of the subject; an invalid one is refused
    # below, after a response stored for its key has had the chance to be replayed.
    locked_id = normalise(claim.applicant.id)
    subject = subject_key(event.subject)

    async def work(tx: ClaimTransaction) -> tuple[int, bytes]:
        if not await tx.own(caller.tenant_id, key, locked_id, event.matter, subject):
            raise IdempotencyKeyInFlight(
                "A request with this Idempotency-Key is still being processed."
            )
        seen = await tx.read(caller.tenant_id, key, locked_id, event.matter, subject)
        if seen.stored is not None:
            if seen.stored.request_hash != digest:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used with a different request body.",
                    errors=[
                        {"loc": ["header", "Idempotency-Key"], "msg": "reused with another body"}
                    ],
                )
            return seen.stored.status_code, seen.stored.body
        try:
            applicant, events = calculations.validate(request, rules, today)
        except InvalidInput as exc:
            exc.errors = [_as_claimed(error) for error in exc.errors or []]
            raise
        check_scope(request, rules, caller.scope)
        if event.date > today:
            raise EventNotYetHappened(
                f"The event is dated {event.date}, after today ({today} in China): an event is"
                " claimed once it has happened. A calculation can weigh it beforehand.",
                errors=[{"loc": ["body", "event", "date"], "msg": f"after today ({today})"}],
            )
        if applicant.id != locked_id:
            raise RuntimeError("the canonical identifier differs from the locked one")
        result = calculations.decided(applicant, events, rules, seen.ledger).results[0]
        if result.entitlement >= LEDGER_BOUND:
            raise AmountBeyondLedger(
                f"The event is worth {result.entitlement} yuan: the ledger records amounts below"
                " 10^12 yuan. Such a grant is made by hand.",
                errors=[{"loc": ["body", "event"], "msg": "worth 10^12 yuan or more"}],
            )
        claim_id = str(uuid.uuid4())
        values, moves = await _settle(tx, caller, claim, applicant.id, result, rules, seen)
        if result.event.subject != subject:
            raise RuntimeError("the canonical subject differs from the one read")
        values |= {"id": claim_id, "created_at": now()}
        body = orjson.dumps(present(values))
        await tx.write(
            moves,
            values,
            Response(caller.tenant_id, key, digest, 201, body, claim_id),
        )
        return 201, body

    # The first attempt takes no locks: most claims meet no other for the same applicant, and
    # its write refuses if one did. The attempts after it hold the locks.
    return await _retrying(lambda attempt: claims.transaction(optimistic=attempt == 0), work)


def _as_claimed(error: dict[str, Any]) -> dict[str, Any]:
    """A calculation's error about its one event, at the claim's `event`."""
    loc = error.get("loc", [])
    if loc[:3] == ["body", "events", 0]:
        return {**error, "loc": ["body", "event", *loc[3:]]}
    return error


def _held_because(
    look_alikes: Sequence[Mapping[str, Any]], given: Sequence[str], *, one_thing: bool
) -> str:
    """Why a claim is held for review: other applicants paid for the same matter and subject
    whose names cannot be compared with its applicant's, or are like the name it gives, or
    like a name it gave on a claim held before; or, for a subject that names one patent,
    person or organisation, whatever their names."""
    name = given[0]
    if not name or any(not row["name_key"] for row in look_alikes):
        return "同一事项与标的已由其他主体获得，名称缺失无法比对"
    if any(may_be_one(name, row["name_key"]) for row in look_alikes):
        return "同一事项与标的已由名称相近的其他主体获得"
    if not one_thing or any(
        may_be_one(n, row["name_key"]) for n in given[1:] for row in look_alikes
    ):
        return "同一事项与标的已由与本主体先前所报名称相近的其他主体获得"
    return "同一事项与标的（专利号、身份证号码或统一社会信用代码）已由其他主体获得"


async def _settle(
    tx: ClaimTransaction,
    caller: Caller,
    claim: ClaimIn,
    applicant_id: str,
    result: Result,
    rules: RuleSet,
    seen: Seen,
) -> tuple[dict[str, Any], list[Move]]:
    """What a decided event pays and which balances that moves; the claim's columns."""
    event = claim.event
    name = name_key(claim.applicant.name)
    due = result.amount if result.status == "eligible" else ZERO
    review = None
    if due > 0:
        # The names this applicant gave on its claims held for review count too: a claim held
        # for a look-alike name is not paid by claiming again under another. A standing
        # approval excuses the look-alikes paid before it, which its reviewer saw.
        # A subject that names one patent, person or organisation in the country was paid for
        # already, whatever the names: a founder and the enterprise it founded, an employer and
        # the talent it brought in, the co-owners of a patent.
        given = [name, *(held for held in seen.held_names if held)]
        cleared = seen.cleared_at
        one_thing = names_one_thing(
            result.event.subject, patent=result.event.matter.startswith(PATENT_MATTERS)
        )
        look_alikes = [
            row
            for row in seen.others
            if (cleared is None or instant(row["created_at"]) > cleared)
            and (one_thing or any(may_be_one(n, row["name_key"]) for n in given))
        ]
        if look_alikes:
            # Another tenant's claims are not shown to this one: only how many there are.
            review = {
                "similar_to": [
                    {
                        "claim_id": row["id"],
                        "applicant_id": _shown(row),
                        "name": row["applicant_name"],
                    }
                    for row in look_alikes
                    if row["tenant_id"] == caller.tenant_id
                ],
                "in_other_tenants": sum(
                    row["tenant_id"] != caller.tenant_id for row in look_alikes
                ),
                "reason": _held_because(look_alikes, given, one_thing=one_thing),
            }
            due = ZERO
    moves: list[Move] = []
    fund, exhausted = None, False
    source = result.granted.clause.funding_source if result.granted is not None else None
    if due > 0 and source is not None and source in seen.budgeted:
        budget = await tx.budget(source)
        if budget is not None:  # a budget set meanwhile applies from the next claim
            limit, granted = budget
            due = min(due, max(ZERO, limit - granted))
            exhausted = due == 0
            if due > 0:
                fund = source
                moves.append(Move("fund", (source,), granted, due))
    status = "budget_exhausted" if exhausted else _status(result, due, review)
    cap_key, cap_years = None, set()
    if due > 0:
        moves.append(
            Move(
                "subject",
                (applicant_id, event.matter, result.event.subject),
                result.previously_granted,
                due,
            )
        )
        cap_key, cap_moves = _cap_moves(applicant_id, result, due, seen.ledger)
        moves.extend(cap_moves)
        cap_years = {move.key[2] for move in cap_moves}
    values: dict[str, Any] = {
        "tenant_id": caller.tenant_id,
        "applicant_id": applicant_id,
        "applicant_kind": claim.applicant.kind,
        "applicant_name": claim.applicant.name,
        "name_key": name,
        "region": claim.applicant.region,
        "matter": event.matter,
        "subject": result.event.subject,
        "event_date": event.date,
        "status": status,
        "initial_status": status,
        "amount": due,
        "entitlement": result.entitlement,
        "previously_granted": result.previously_granted,
        "cap_key": cap_key,
        "cumulative_cap_moved": 0 in cap_years,
        "yearly_cap_moved": event.date.year in cap_years,
        "fund": fund,
        "duplicate_of": seen.paid if status == "duplicate" else [],
        "review": review,
        "decision": calculations.render_result(result),
        "registry_version": rules.version,
    }
    return values, moves


@asynccontextmanager
async def _committed(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits when the block ends without an error."""
    async with sessions() as session:
        yield session
        await session.commit()


def _status(result: Result, due: Decimal, review: dict[str, Any] | None) -> str:
    if result.status != "eligible":
        return result.status
    if review is not None:
        return "needs_review"
    if due > 0:
        return "topped_up" if result.previously_granted > 0 else "granted"
    # Nothing due: everything was granted already, or, when nothing was, a cap is used up.
    return "duplicate" if result.previously_granted > 0 else "cap_exhausted"


def _cap_moves(
    applicant_id: str, result: Result, due: Decimal, ledger: Ledger
) -> tuple[str | None, list[Move]]:
    """The cap balances a payment counts against, and the cap key recorded with the claim."""
    if result.granted is None:
        return None, []
    clause = result.granted.clause
    caps = clause.caps
    if not caps.running:
        return None, []
    cap_key = clause.cap_key_for(result.event)
    moves = []
    if caps.cumulative is not None:
        seen = ledger.by_cap.get(cap_key, ZERO)
        moves.append(Move("cap", (applicant_id, cap_key, 0), seen, due))
    if caps.per_applicant_year is not None:
        year = result.event.date.year
        seen = ledger.by_cap_year.get((cap_key, year), ZERO)
        moves.append(Move("cap", (applicant_id, cap_key, year), seen, due))
    return cap_key, moves


def _shown(row: Mapping[str, Any]) -> str:
    """Identity numbers of people are masked wherever they are shown."""
    applicant_id: str = row["applicant_id"]
    return mask_ric(applicant_id) if row["applicant_kind"] == "individual" else applicant_id


def _shown_subject(subject: str) -> str:
    """A subject that is a person's identity number (一人一次: the talent is the subject) is
    masked as an applicant's is, however it was written, and so is one among other words."""
    key = subject_key(subject)
    if is_ric(key):
        return mask_ric(key)
    return _IDENTITY_NUMBER.sub(_masked, subject)


# A run that may be a 居民身份证号码 inside a longer subject; masked only if its check digit is.
_IDENTITY_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")


def _masked(found: re.Match[str]) -> str:
    number = found.group().upper()
    return mask_ric(number) if is_ric(number) else found.group()


def present(row: Mapping[str, Any]) -> dict[str, Any]:
    """A claim as the API shows it (a person's identity number masked)."""
    created: dt.datetime = row["created_at"]
    revoked: dt.datetime | None = row.get("revoked_at")
    history: list[dict[str, Any]] = [{"status": row["initial_status"], "at": created.isoformat()}]
    decided = (row["review"] or {}).get("decided")
    if decided is not None:
        history.append(decided)
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
        "amount": calculations.money_text(row["amount"]),
        "entitlement": calculations.money_text(row["entitlement"]),
        "previously_granted": calculations.money_text(row["previously_granted"]),
        "withheld": calculations.money_text(_withheld(row)),
        "duplicate_of": row["duplicate_of"],
        "review": row["review"],
        "decision": _shown_decision(row["decision"]),
        "applicant": {
            "id": _shown(row),
            "kind": row["applicant_kind"],
            "name": row["applicant_name"],
            "region": row["region"],
        },
        "matter": row["matter"],
        "subject": _shown_subject(row["subject"]),
        "event_date": row["event_date"].isoformat(),
        "registry_version": row["registry_version"],
        "tenant": row["tenant_id"],
        "created_at": created.isoformat(),
        "history": history,
    }


def _withheld(row: Mapping[str, Any]) -> Decimal:
    """What a claim left due for want of budget: its fund had less left than the entitlement
    still owed. It stays due; a claim after the budget is raised pays it (补差)."""
    if row["status"] not in ("granted", "topped_up", "budget_exhausted"):
        return ZERO
    owed = Decimal(row["entitlement"]) - Decimal(row["previously_granted"])
    return max(ZERO, owed - Decimal(row["amount"]))


def _shown_decision(decision: dict[str, Any]) -> dict[str, Any]:
    subject = decision.get("subject")
    if not isinstance(subject, str):
        return decision
    shown = _shown_subject(subject)
    return decision if shown == subject else {**decision, "subject": shown}


def _visible(row: Any, caller: Caller) -> bool:
    return caller.visibility == "all" or row.tenant_id == caller.tenant_id


async def read(session: AsyncSession, claim_id: str, caller: Caller) -> dict[str, Any]:
    """One claim, if the caller may see it (another tenant's claim is as missing as none)."""
    row = await repository.get_claim(session, claim_id)
    if row is None or not _visible(row, caller):
        raise ClaimNotFound(f"No claim {claim_id!r}.")
    return present(row._mapping)


async def review(
    sessions: async_sessionmaker[AsyncSession],
    locks: Locks,
    *,
    claim_id: str,
    caller: Caller,
    approve: bool,
    reason: str,
    now: Callable[[], dt.datetime],
) -> bytes:
    """Decide a claim held for review. It pays nothing itself: approved, the applicant's next
    claim for the same matter and subject is not held for its look-alikes and is paid as any
    claim is, within the ledger and its caps; rejected, the names it gave keep holding them."""

    async def work(session: AsyncSession) -> bytes:
        row = await repository.get_claim(session, claim_id)
        if row is None:
            raise ClaimNotFound(f"No claim {claim_id!r}.")
        decided = {
            "status": "review_approved" if approve else "review_rejected",
            "at": now().isoformat(),
            "reason": reason,
            "by": caller.actor,
        }
        async with locks.applicant(session, row.applicant_id):
            if not await repository.mark_reviewed(
                session,
                claim_id,
                status=str(decided["status"]),
                review={**(row.review or {}), "decided": decided},
            ):
                now_row = await repository.get_claim(session, claim_id)
                raise ClaimNotReviewable(
                    f"Claim {claim_id} has status {now_row.status}; only a claim held for"
                    " review (needs_review) is reviewed."
                )
            updated = await repository.get_claim(session, claim_id)
            return orjson.dumps(present(updated._mapping))

    return await _retrying(lambda _: _committed(sessions), work)


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
                now_row = await repository.get_claim(session, claim_id)
                raise ClaimNotRevocable(
                    f"Claim {claim_id} has status {now_row.status}; only a paid claim is revoked."
                )
            ledger = await repository.ledger_for(
                session, row.applicant_id, [(row.matter, row.subject)]
            )
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
                year = row.event_date.year
                for moved, cap_year, seen in (
                    (row.cumulative_cap_moved, 0, ledger.by_cap.get(row.cap_key, ZERO)),
                    (row.yearly_cap_moved, year, ledger.by_cap_year.get((row.cap_key, year), ZERO)),
                ):
                    if moved is None:
                        log.warning(
                            "revoked claim's cap balance left as it is: not known to be moved",
                            extra={"claim_id": claim_id, "cap_key": row.cap_key, "year": cap_year},
                        )
                        continue
                    # Less than the amount only where revocations before 2026-12-07 took other
                    # clauses' grants back from the balance too.
                    back = min(amount, seen)
                    if moved and back > 0:
                        await repository.move_cap(
                            session,
                            applicant_id=row.applicant_id,
                            cap_key=row.cap_key,
                            year=cap_year,
                            seen=seen,
                            delta=-back,
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

    return await _retrying(lambda _: _committed(sessions), work)
