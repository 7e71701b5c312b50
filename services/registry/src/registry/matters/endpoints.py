"""`GET /v1/matters`."""

from __future__ import annotations

from fastapi import APIRouter

from registry.db import SessionDep
from registry.matters import repository
from registry.matters.schemas import MatterList, MatterRead
from registry.paging import Cursor, Limit, page

router = APIRouter(prefix="/v1/matters", tags=["reference"])


@router.get("", response_model=MatterList)
async def list_matters(session: SessionDep, limit: Limit = 50, cursor: Cursor = None) -> MatterList:
    """The matters with their attributes, in catalogue order, a page at a time."""
    matters, next_cursor = page(
        await repository.list_matters(session), lambda m: m.key, limit, cursor
    )
    return MatterList(
        items=[MatterRead.model_validate(m) for m in matters], next_cursor=next_cursor
    )
