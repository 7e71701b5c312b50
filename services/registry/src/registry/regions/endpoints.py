"""`GET /v1/regions`."""

from __future__ import annotations

from fastapi import APIRouter

from registry.db import SessionDep
from registry.regions import repository
from registry.regions.schemas import RegionList, RegionRead

router = APIRouter(prefix="/v1/regions", tags=["reference"])


@router.get("", response_model=RegionList)
async def list_regions(session: SessionDep) -> RegionList:
    """Every region, parents before children."""
    regions = await repository.list_regions(session)
    return RegionList(items=[RegionRead.model_validate(r) for r in regions])
