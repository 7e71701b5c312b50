"""`/v1/claims`: submit, read, list and revoke, for the tenant the gateway names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, cast

import orjson
from fastapi import APIRouter, Header, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response
from subsidy_common.actor import ACTOR_HEADER_LENGTH, decode_actor
from subsidy_common.headers import HandHeader, documented
from subsidy_common.identifiers import normalise
from subsidy_common.problems import InvalidInput, not_a_cursor, validated_body
from subsidy_common.routing import DirectRoute

from calculator.calculations.endpoints import SCOPE, check_scope
from calculator.claims import repository, service
from calculator.claims.ledger import Claims
from calculator.claims.locks import Locks
from calculator.claims.schemas import BudgetIn, ClaimIn, ReviewIn, RevokeIn
from calculator.db import SessionDep
from calculator.registry_client import SnapshotStore

router = APIRouter(tags=["claims"], route_class=DirectRoute)

TenantId = Annotated[str, Header(alias="X-Tenant-ID", min_length=1, max_length=36)]
Visibility = Annotated[Literal["own", "all"], Header(alias="X-Visibility")]
# Submitting a claim reads its headers by hand (subsidy_common.headers).
TENANT = HandHeader("X-Tenant-ID", required=True, min_length=1, max_length=36)
IDEMPOTENCY_KEY = HandHeader("Idempotency-Key")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return cast(async_sessionmaker[AsyncSession], request.app.state.sessions)


def _locks(request: Request) -> Locks:
    return cast(Locks, request.app.state.locks)


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


@router.post(
    "/v1/claims",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An applicant and one event (the gateway's ClaimRequest).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **documented(TENANT, SCOPE, IDEMPOTENCY_KEY),
    },
)
async def submit_claim(request: Request) -> Response:
    """Decide an event and grant what is due, once, whoever asks and however often."""
    tenant_id = TENANT.require(request)
    scope = SCOPE.read(request)
    idempotency_key = IDEMPOTENCY_KEY.read(request)
    body = validated_body(ClaimIn, await request.body())
    store = cast(SnapshotStore, request.app.state.snapshots)
    status, payload = await service.submit(
        cast(Claims, request.app.state.claims),
        caller=service.Caller(tenant_id=tenant_id, scope=scope),
        key=idempotency_key,
        claim=body,
        rules=store.rules,
        today=service.china_today(_now()),
        now=_now,
        check_scope=check_scope,
    )
    claim = orjson.loads(payload)
    request.app.state.decision_metrics.claimed(claim["status"], Decimal(claim["amount"]))
    answer = _json(payload, status)
    answer.headers["Location"] = f"/v1/claims/{claim['id']}"  # the same path at the gateway
    return answer


@router.get("/v1/claims/{claim_id}")
async def read_claim(
    claim_id: str, session: SessionDep, tenant_id: TenantId, visibility: Visibility = "own"
) -> Response:
    """One claim; another tenant's claim is 404 for an operator, exactly like a missing one."""
    caller = service.Caller(tenant_id=tenant_id, visibility=visibility)
    return _json(orjson.dumps(await service.read(session, claim_id, caller)))


@router.get("/v1/claims")
async def list_claims(
    session: SessionDep,
    tenant_id: TenantId,
    visibility: Visibility = "own",
    applicant_id: Annotated[str | None, Query(max_length=40)] = None,
    matter: Annotated[str | None, Query(max_length=80)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=36)] = None,
) -> Response:
    """Claims the caller may see, filtered, a page at a time."""
    if cursor is not None:
        named = await repository.get_claim(session, cursor)
        if named is None or (visibility != "all" and named.tenant_id != tenant_id):
            raise not_a_cursor()
    rows = await repository.list_claims(
        session,
        tenant_id=None if visibility == "all" else tenant_id,
        applicant_id=normalise(applicant_id) if applicant_id else None,
        matter=matter,
        status=status,
        after=cursor,
        limit=limit + 1,
    )
    items = [service.present(row._mapping) for row in rows[:limit]]
    next_cursor = items[-1]["id"] if len(rows) > limit else None
    return _json(orjson.dumps({"items": items, "next_cursor": next_cursor}))


@router.post("/v1/claims/{claim_id}/revoke")
async def revoke_claim(
    claim_id: str,
    body: RevokeIn,
    request: Request,
    tenant_id: TenantId,
    actor: Annotated[str, Header(alias="X-Actor", min_length=1, max_length=ACTOR_HEADER_LENGTH)],
) -> Response:
    """Take a grant back (追回); the claim keeps its history."""
    caller = service.Caller(tenant_id=tenant_id, visibility="all", actor=decode_actor(actor))
    payload = await service.revoke(
        _sessions(request),
        _locks(request),
        claim_id=claim_id,
        caller=caller,
        reason=body.reason,
        now=_now,
    )
    return _json(payload)


@router.post("/v1/claims/{claim_id}/review")
async def review_claim(
    claim_id: str,
    body: ReviewIn,
    request: Request,
    tenant_id: TenantId,
    actor: Annotated[str, Header(alias="X-Actor", min_length=1, max_length=ACTOR_HEADER_LENGTH)],
) -> Response:
    """Approve or reject a claim held for review (人工复核)."""
    caller = service.Caller(tenant_id=tenant_id, visibility="all", actor=decode_actor(actor))
    payload = await service.review(
        _sessions(request),
        _locks(request),
        claim_id=claim_id,
        caller=caller,
        approve=body.decision == "approve",
        reason=body.reason,
        now=_now,
    )
    return _json(payload)


def _fund(row: Mapping[str, Any]) -> dict[str, Any]:
    budget, granted = Decimal(row["budget"]), Decimal(row["granted"])
    return {
        "fund": row["fund"],
        "budget": f"{budget:.2f}",
        "granted": f"{granted:.2f}",
        "remaining": f"{max(Decimal(0), budget - granted):.2f}",
        "updated_at": row["updated_at"].isoformat(),
        "updated_by": row["updated_by"],
        "reason": row["reason"],
    }


@router.get("/v1/admin/funds")
async def list_funds(session: SessionDep) -> Response:
    """Every fund with a budget: what it may grant, has granted, has left."""
    rows = await repository.funds(session)
    return _json(orjson.dumps({"items": [_fund(r._mapping) for r in rows], "next_cursor": None}))


@router.put("/v1/admin/funds/{fund}")
async def set_budget(
    fund: Annotated[str, Path(min_length=2, max_length=200)],
    body: BudgetIn,
    session: SessionDep,
    request: Request,
    actor: Annotated[str, Header(alias="X-Actor", min_length=1, max_length=ACTOR_HEADER_LENGTH)],
) -> Response:
    """Set a fund's budget; claims drawing on it pay no more than what is left of it. The fund
    is one a clause draws on, or one with a budget already: a name mistyped would have been a
    budget nothing draws on, and the fund meant left without one."""
    rules = cast(SnapshotStore, request.app.state.snapshots).rules
    if fund not in rules.funds and await repository.fund(session, fund) is None:
        raise InvalidInput(
            f"No clause draws on a fund named {fund!r}: a budget is set for a clause's"
            " funding_source, as the policies name it.",
            errors=[{"loc": ["path", "fund"], "msg": "no clause draws on this fund"}],
        )
    await repository.set_budget(
        session,
        fund,
        budget=body.budget,
        by=decode_actor(actor),
        reason=body.reason,
        at=_now(),
    )
    row = await repository.fund(session, fund)
    assert row is not None  # written just above, in this transaction
    return _json(orjson.dumps(_fund(row)))
