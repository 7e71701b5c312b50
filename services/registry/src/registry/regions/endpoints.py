"""`GET /v1/regions`."""

from __future__ import annotations

from fastapi import APIRouter

from registry.db import SessionDep
from registry.paging import Cursor, Limit, page
from registry.regions import repository
from registry.regions.schemas import RegionList, RegionRead

router = APIRouter(prefix="/v1/regions", tags=["reference"])


@router.get("", response_model=RegionList)
async def list_regions(session: SessionDep, limit: Limit = 50, cursor: Cursor = None) -> RegionList:
    """The regions, parents before children, a page at a time."""
    regions, next_cursor = page(
        await repository.list_regions(session), lambda r: r.code, limit, cursor
    )
    return RegionList(
        items=[RegionRead.model_validate(r) for r in regions], next_cursor=next_cursor
    )
