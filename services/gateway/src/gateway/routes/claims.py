"""Claims: submitted by operators and the admin, read within scope, revoked by the admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response
from subsidy_common.actor import ACTOR_HEADER, encode_actor
from subsidy_common.headers import HandHeader, documented
from subsidy_common.problems import Forbidden, validated_body
from subsidy_common.routing import DirectRoute

from gateway.auth.principal import AdminDep, Principal, PrincipalDep
from gateway.bodies import checked
from gateway.clients import lookup
from gateway.contract.claims import (
    Claim,
    ClaimList,
    ClaimRequest,
    ClaimStatus,
    ReviewRequest,
    RevokeRequest,
)
from gateway.openapi import PROBLEM_RESPONSES, json_body
from gateway.query import Limit, forwarded
from gateway.routes.calculations import scope_headers

router = APIRouter(tags=["claims"], responses=PROBLEM_RESPONSES, route_class=DirectRoute)

ClaimId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="申报标识",
    ),
]


def tenant_headers(principal: Principal) -> dict[str, str]:
    """Who asks, and what it may see: an operator only its own claims."""
    return {
        "X-Tenant-ID": principal.tenant_id,
        "X-Visibility": "own" if principal.role == "operator" else "all",
        ACTOR_HEADER: encode_actor(principal.name, principal.tenant_id),
    }


# The calculator answers the header's absence (400); the gateway bounds its length.
IDEMPOTENCY_KEY = HandHeader(
    "Idempotency-Key", max_length=255, description="客户端选定的幂等键（必填，仅一个）", once=True
)


@router.post(
    "/v1/claims",
    status_code=201,
    response_model=Claim,
    summary="提交申报",
    openapi_extra=json_body("ClaimRequest") | documented(IDEMPOTENCY_KEY),
)
async def submit_claim(request: Request, principal: PrincipalDep) -> Response:
    """Decide one event and grant what is due: the best entitlement minus what the ledger
    already granted for the same (applicant, matter, subject), never below zero. Retrying with
    the same Idempotency-Key returns the first response again and grants nothing more."""
    key = IDEMPOTENCY_KEY.read(request)
    if principal.role == "auditor":
        raise Forbidden("Auditors read claims; they do not submit them.")
    body = await request.body()  # bounded by the input guard
    validated_body(ClaimRequest, body)
    headers = {
        "Content-Type": "application/json",
        **tenant_headers(principal),
        **scope_headers(principal),
    }
    if key is not None:
        headers["Idempotency-Key"] = key
    return await lookup.calculator(request).forward(
        "POST", "/v1/claims", content=body, headers=headers
    )


@router.get("/v1/claims/{claim_id}", response_model=Claim, summary="申报详情")
async def read_claim(claim_id: ClaimId, request: Request, principal: PrincipalDep) -> Response:
    """One claim; an operator sees only the claims it submitted."""
    return await lookup.calculator(request).forward(
        "GET", f"/v1/claims/{claim_id}", headers=tenant_headers(principal)
    )


@router.get("/v1/claims", response_model=ClaimList, summary="申报列表")
async def list_claims(
    request: Request,
    principal: PrincipalDep,
    applicant_id: Annotated[str | None, Query(max_length=40, description="申报主体代码")] = None,
    matter: Annotated[str | None, Query(max_length=80, description="事项键")] = None,
    status: Annotated[ClaimStatus | None, Query(description="状态")] = None,
    limit: Limit = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            description="上一页返回的游标（该页最后一条申报的标识）",
        ),
    ] = None,
) -> Response:
    """Claims the caller may see, filtered by applicant, matter and status."""
    params = forwarded(
        applicant_id=applicant_id, matter=matter, status=status, limit=limit, cursor=cursor
    )
    return await lookup.calculator(request).forward(
        "GET", "/v1/claims", params=params, headers=tenant_headers(principal)
    )


@router.post(
    "/v1/claims/{claim_id}/review",
    response_model=Claim,
    summary="复核申报",
    openapi_extra=json_body("ReviewRequest"),
)
async def review_claim(claim_id: ClaimId, request: Request, principal: AdminDep) -> Response:
    """Approve or reject a claim held for review (needs_review); 409 for any other. The claim
    pays nothing itself. Approved, the applicant's next claim for the same matter and subject
    is not held for applicants with a like name and is paid as any claim is, within the ledger,
    its caps and budgets; rejected, the names it gave keep holding such claims."""
    body, _ = await checked(request, ReviewRequest)
    headers = {"Content-Type": "application/json", **tenant_headers(principal)}
    return await lookup.calculator(request).forward(
        "POST", f"/v1/claims/{claim_id}/review", content=body, headers=headers
    )


@router.post(
    "/v1/claims/{claim_id}/revoke",
    response_model=Claim,
    summary="追回申报",
    openapi_extra=json_body("RevokeRequest"),
)
async def revoke_claim(claim_id: ClaimId, request: Request, principal: AdminDep) -> Response:
    """Take a grant back: the claim keeps its history and stops counting in the ledger."""
    body, _ = await checked(request, RevokeRequest)
    headers = {"Content-Type": "application/json", **tenant_headers(principal)}
    return await lookup.calculator(request).forward(
        "POST", f"/v1/claims/{claim_id}/revoke", content=body, headers=headers
    )
