"""`GET /v1/matters`."""

from __future__ import annotations

from fastapi import APIRouter

from registry.db import SessionDep
from registry.matters import repository
from registry.matters.schemas import MatterList, MatterRead

router = APIRouter(prefix="/v1/matters", tags=["reference"])


@router.get("", response_model=MatterList)
async def list_matters(session: SessionDep) -> MatterList:
    """Every matter with its attributes."""
    matters = await repository.list_matters(session)
    return MatterList(items=[MatterRead.model_validate(m) for m in matters])
