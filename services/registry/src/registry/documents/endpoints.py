"""`/v1/policies` (read) and `/v1/admin/policies` (write), as the gateway relays them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from subsidy_common.actor import ACTOR_HEADER_LENGTH, decode_actor
from subsidy_common.problems import (
    DomainError,
    InvalidInput,
    not_a_cursor,
    numbered_cursor,
    problem_type,
)
from subsidy_common.types import IsoDate, QueryRecordedInstant

from registry.db import SessionDep
from registry.documents import repository, service
from registry.documents.schemas import (
    AuditList,
    AuditRead,
    PolicyDetail,
    PolicyList,
    PolicyWrite,
    RepealRequest,
    VersionList,
    VersionRead,
    detail_of,
    summary_of,
)
from registry.documents.status import Status, covers
from registry.paging import Cursor, Limit
from registry.policy_files.models import normalise_doc_no

router = APIRouter(tags=["policies"])

AsOf = Annotated[
    QueryRecordedInstant | None,
    Query(description="按该时刻登记的内容作答（可复现过去的计算；不得晚于当前时刻）"),
]
Actor = Annotated[str, Header(alias="X-Actor", min_length=1, max_length=ACTOR_HEADER_LENGTH)]


class PreconditionRequired(DomainError):
    """A write that must name the version it changes."""

    type = problem_type("precondition-required")
    title = "Precondition Required"
    status = 428


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _reference(request: Request) -> service.Reference:
    reference: service.Reference = request.app.state.reference
    return reference


@router.get("/v1/policies", response_model=PolicyList)
async def list_policies(
    session: SessionDep,
    region: Annotated[str | None, Query(max_length=16, description="适用于该区域的文件")] = None,
    in_force_on: Annotated[IsoDate | None, Query(description="判定状态的日期")] = None,
    status: Annotated[Status | None, Query(description="状态")] = None,
    q: Annotated[str | None, Query(max_length=100, description="标题或文号包含的文字")] = None,
    as_of: AsOf = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PolicyList:
    """Documents filtered by region, status on a date and text, a page at a time."""
    day = in_force_on or _today()
    # A date alone asks what was in force on it; a status is judged on that date.
    wanted = status if status is not None else ("in_force" if in_force_on else None)
    if as_of is not None:
        await repository.settle_writes(session, as_of)
    parents = await repository.region_parents(session) if region else {}
    if region is not None and region not in parents:
        raise InvalidInput(
            f"No region {region!r}; see /v1/regions.",
            errors=[{"loc": ["query", "region"], "msg": "unknown region code; see /v1/regions"}],
        )
    wanted_no = _within_doc_no(normalise_doc_no(q)) if q is not None else None
    if cursor is not None and not await repository.recorded(session, cursor):
        raise not_a_cursor()  # a cursor is the id of a document listed on the page before
    items = []
    for version in await repository.current_versions(session, as_of=as_of):
        if cursor is not None and version.document_id <= cursor:
            continue
        document = service.document_of(version)
        if region is not None and not covers(list(document.jurisdiction), region, parents):
            continue
        if (
            q is not None
            and wanted_no is not None
            and q not in document.title
            and not wanted_no.search(normalise_doc_no(document.doc_no or ""))
        ):
            continue
        item = summary_of(version, document, day)
        if wanted is not None and item.status != wanted:
            continue
        items.append(item)
        if len(items) > limit:
            break
    next_cursor = items[limit - 1].id if len(items) > limit else None
    return PolicyList(items=items[:limit], next_cursor=next_cursor)


def _within_doc_no(wanted: str) -> re.Pattern[str]:
    """A search for part of a 文号 whose numbers are whole: `33号` finds 〔2015〕33号, not
    〔2017〕333号."""
    before = r"(?<!\d)" if wanted[:1].isdigit() else ""
    after = r"(?!\d)" if wanted[-1:].isdigit() else ""
    return re.compile(before + re.escape(wanted) + after)


@router.get("/v1/policies/{document_id}", response_model=PolicyDetail)
async def read_policy(
    document_id: str,
    session: SessionDep,
    response: Response,
    in_force_on: Annotated[IsoDate | None, Query(description="判定状态的日期")] = None,
    as_of: AsOf = None,
) -> PolicyDetail:
    """One document with its clauses; the ETag names its version."""
    if as_of is not None:
        await repository.settle_writes(session, as_of)
    version = await repository.current_version(session, document_id, as_of=as_of)
    if version is None:
        raise service.DocumentNotFound(f"No document {document_id!r}.")
    response.headers["ETag"] = service.etag(version)
    return detail_of(version, service.document_of(version), in_force_on or _today())


@router.get("/v1/policies/{document_id}/versions", response_model=VersionList)
async def list_versions(document_id: str, session: SessionDep) -> VersionList:
    """Every recorded version of a document, with who changed it, when and why."""
    versions = await repository.versions(session, document_id)
    if not versions:
        raise service.DocumentNotFound(f"No document {document_id!r}.")
    return VersionList(
        items=[
            VersionRead(
                version=v.version,
                recorded_at=v.recorded_at,
                superseded_at=v.superseded_at,
                author=v.author,
                reason=v.reason,
                origin=v.origin,
                content_hash=v.content_hash,
            )
            for v in versions
        ]
    )


@router.post("/v1/admin/policies", status_code=201, response_model=PolicyDetail)
async def create_policy(
    body: PolicyWrite, session: SessionDep, request: Request, response: Response, actor: Actor
) -> PolicyDetail:
    """Record a new document, validated whole."""
    version = await service.create(
        session,
        data=body.document,
        reference=_reference(request),
        actor=decode_actor(actor),
        reason=_reason(body),
    )
    response.headers["ETag"] = service.etag(version)
    response.headers["Location"] = f"/v1/policies/{version.document_id}"
    return detail_of(version, service.document_of(version), _today())


@router.put("/v1/admin/policies/{document_id}", response_model=PolicyDetail)
async def amend_policy(
    document_id: str,
    body: PolicyWrite,
    session: SessionDep,
    request: Request,
    response: Response,
    actor: Actor,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=200)] = None,
) -> PolicyDetail:
    """Record a new version of a document; `If-Match` must carry the current ETag."""
    if if_match is None:
        raise PreconditionRequired("Send If-Match with the ETag of the version you amend.")
    version = await service.amend(
        session,
        document_id=document_id,
        data=body.document,
        if_match=if_match,
        reference=_reference(request),
        actor=decode_actor(actor),
        reason=_reason(body),
    )
    response.headers["ETag"] = service.etag(version)
    return detail_of(version, service.document_of(version), _today())


@router.post("/v1/admin/policies/{document_id}/repeal", response_model=PolicyDetail)
async def repeal_policy(
    document_id: str,
    body: RepealRequest,
    session: SessionDep,
    request: Request,
    response: Response,
    actor: Actor,
) -> PolicyDetail:
    """Record that a document no longer applies from a date on."""
    version = await service.repeal(
        session,
        document_id=document_id,
        day=body.date,
        reference=_reference(request),
        actor=decode_actor(actor),
        reason=body.reason,
    )
    response.headers["ETag"] = service.etag(version)
    return detail_of(version, service.document_of(version), _today())


# The content a page of the audit log holds at most (characters of its entries' documents, before
# and after), past its first entry: a document may be megabytes, and a page asks for up to 500.
AUDIT_PAGE_SIZE = 8 * 1024 * 1024


@router.get("/v1/admin/audit", response_model=AuditList)
async def list_audit(
    session: SessionDep,
    document_id: Annotated[str | None, Query(max_length=80, description="只看该文件")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AuditList:
    """The audit log, newest first; a page of large entries holds fewer than asked for
    (`AUDIT_PAGE_SIZE`), and its cursor leads on."""
    entries, more = await repository.audit_entries(
        session,
        document_id=document_id,
        after=numbered_cursor(cursor),
        limit=limit,
        size=AUDIT_PAGE_SIZE,
    )
    items = [AuditRead.model_validate(e) for e in entries]
    return AuditList(items=items, next_cursor=str(items[-1].id) if more else None)


def _reason(body: PolicyWrite) -> object:
    """The reason as sent, checked with the document (`service.checked_reason`)."""
    return body.reason if "reason" in body.model_fields_set else service.NO_REASON
