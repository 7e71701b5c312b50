"""Policies: read by every tenant, written by the city policy office (admin)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import Response
from subsidy_common.actor import ACTOR_HEADER, encode_actor
from subsidy_common.problems import Forbidden
from subsidy_common.types import IsoDate, QueryRecordedInstant

from gateway.auth.principal import AdminDep, Principal, PrincipalDep
from gateway.bodies import checked
from gateway.clients import lookup
from gateway.clients.calculators import read_registry_again
from gateway.contract.policies import (
    AuditList,
    PolicyDetail,
    PolicyList,
    RepealRequest,
    Status,
    VersionList,
)
from gateway.openapi import PROBLEM_RESPONSES, json_body
from gateway.query import Cursor, Limit, forwarded

log = logging.getLogger(__name__)

router = APIRouter(tags=["policies"], responses=PROBLEM_RESPONSES)
admin_router = APIRouter(tags=["admin"], responses=PROBLEM_RESPONSES)

DocumentId = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$", max_length=80, description="文件标识")
]
AsOf = Annotated[
    QueryRecordedInstant | None,
    Query(description="按该时刻登记的内容作答（RFC 3339，带时区；不得晚于当前时刻，422）"),
]


# How long a policy write waits for the calculators to read it: past this it is answered anyway.
CALCULATORS_READ_SECONDS = 5.0


def _actor(principal: Principal) -> dict[str, str]:
    return {ACTOR_HEADER: encode_actor(principal.name, principal.tenant_id)}


@router.get("/v1/policies", response_model=PolicyList, summary="政策文件列表")
async def list_policies(
    request: Request,
    _: PrincipalDep,
    region: Annotated[
        str | None, Query(pattern=r"^[0-9]{6}(-[A-Z]{2})?$", description="适用于该区域")
    ] = None,
    in_force_on: Annotated[
        IsoDate | None, Query(description="在该日有效的文件（YYYY-MM-DD）")
    ] = None,
    status: Annotated[Status | None, Query(description="状态")] = None,
    q: Annotated[str | None, Query(max_length=100, description="标题或文号包含的文字")] = None,
    as_of: AsOf = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Documents by region, validity on a date, status and title, a page at a time."""
    params = forwarded(
        region=region, in_force_on=in_force_on, status=status, q=q, as_of=as_of, limit=limit,
        cursor=cursor,
    )  # fmt: skip
    return await lookup.registry(request).forward("GET", "/v1/policies", params=params)


@router.get("/v1/policies/{document_id}", response_model=PolicyDetail, summary="政策文件详情")
async def read_policy(
    document_id: DocumentId,
    request: Request,
    _: PrincipalDep,
    in_force_on: Annotated[
        IsoDate | None, Query(description="判定状态的日期（YYYY-MM-DD）")
    ] = None,
    as_of: AsOf = None,
) -> Response:
    """One document with its clauses and their source quotes; the ETag names its version."""
    params = forwarded(in_force_on=in_force_on, as_of=as_of)
    return await lookup.registry(request).forward(
        "GET", f"/v1/policies/{document_id}", params=params
    )


@router.get(
    "/v1/policies/{document_id}/versions", response_model=VersionList, summary="政策文件版本"
)
async def list_versions(document_id: DocumentId, request: Request, _: PrincipalDep) -> Response:
    """Every recorded version of a document: who changed it, when and why."""
    return await lookup.registry(request).forward("GET", f"/v1/policies/{document_id}/versions")


@admin_router.post(
    "/v1/admin/policies",
    status_code=201,
    response_model=PolicyDetail,
    summary="登记政策文件",
    openapi_extra=json_body("PolicyWrite"),
)
async def create_policy(request: Request, principal: AdminDep) -> Response:
    """Record a new document; it is validated whole and every problem is listed."""
    # The registry checks the reason with the document, so that one answer lists both.
    written = await lookup.registry(request).forward(
        "POST",
        "/v1/admin/policies",
        content=await request.body(),
        headers={"Content-Type": "application/json", **_actor(principal)},
    )
    return await _read_by_calculators(request, written)


@admin_router.put(
    "/v1/admin/policies/{document_id}",
    response_model=PolicyDetail,
    summary="修订政策文件",
    openapi_extra=json_body("PolicyWrite"),
)
async def amend_policy(
    document_id: DocumentId,
    request: Request,
    principal: AdminDep,
    if_match: Annotated[
        str | None, Header(alias="If-Match", max_length=200, description="当前版本的 ETag")
    ] = None,
) -> Response:
    """Record a new version; send the ETag you read in If-Match (412 when it is stale). The
    document may be sent as `GET /v1/policies/{document_id}` shows it, changed where it should
    change: what the registry derives (status, version, clause_count, recorded_at) is passed
    over, and clause ids may keep the document's id before them. A document sent back unchanged
    records no new version."""
    body = await request.body()  # checked whole by the registry, as a new document is
    headers = {"Content-Type": "application/json", **_actor(principal)}
    if if_match is not None:
        headers["If-Match"] = if_match
    written = await lookup.registry(request).forward(
        "PUT", f"/v1/admin/policies/{document_id}", content=body, headers=headers
    )
    return await _read_by_calculators(request, written)


@admin_router.post(
    "/v1/admin/policies/{document_id}/repeal",
    response_model=PolicyDetail,
    summary="废止政策文件",
    openapi_extra=json_body("RepealRequest"),
)
async def repeal_policy(document_id: DocumentId, request: Request, principal: AdminDep) -> Response:
    """Record that a document no longer applies from a date on."""
    written = await lookup.registry(request).forward(
        "POST",
        f"/v1/admin/policies/{document_id}/repeal",
        content=(await checked(request, RepealRequest))[0],
        headers={"Content-Type": "application/json", **_actor(principal)},
    )
    return await _read_by_calculators(request, written)


async def _read_by_calculators(request: Request, written: Response) -> Response:
    """A policy write, answered once every calculator has read it: a calculation or a claim
    made after the answer weighs what was written (a claim just after a repeal had been paid
    under the repealed document until the next revalidation, up to 2 s later). A calculator
    that cannot be told in time catches up at its next revalidation; the write stands."""
    if written.status_code < 300:
        failed = await read_registry_again(request, seconds=CALCULATORS_READ_SECONDS)
        if failed:
            log.warning(
                "a calculator did not read a policy write at once; it will at its next"
                " revalidation",
                extra={"failed": failed},
            )
    return written


@admin_router.get("/v1/admin/audit", response_model=AuditList, summary="审计日志")
async def list_audit(
    request: Request,
    principal: PrincipalDep,
    document_id: Annotated[str | None, Query(max_length=80, description="只看该文件")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Every change to the registry, newest first (admin and auditor)."""
    if principal.role not in ("admin", "auditor"):
        raise Forbidden("The audit log is read by the admin and auditor roles only.")
    params = forwarded(document_id=document_id, limit=limit, cursor=cursor)
    return await lookup.registry(request).forward("GET", "/v1/admin/audit", params=params)
