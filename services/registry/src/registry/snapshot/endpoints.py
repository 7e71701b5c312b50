"""`GET /internal/v1/snapshot`: the calculator's rule set, revalidated by ETag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response
from subsidy_common.types import QueryRecordedInstant

from registry.db import SessionDep
from registry.snapshot.service import SnapshotCache

router = APIRouter(prefix="/internal/v1", tags=["internal"])


@router.get("/snapshot")
async def snapshot(
    request: Request,
    session: SessionDep,
    as_of: Annotated[
        QueryRecordedInstant | None, Query(description="as recorded at this instant")
    ] = None,
    # The calculator names every rule set it holds (up to 17 ETags of 34 characters).
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=1024)] = None,
) -> Response:
    """The rule set now (or as recorded at `as_of`); 304 when the client's copy is current."""
    cache: SnapshotCache = request.app.state.snapshots
    if as_of is None:
        current = await cache.current(session)
    else:
        current = await cache.as_of(session, as_of)
    headers = {"ETag": current.etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and current.etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(current.body, media_type="application/json", headers=headers)
