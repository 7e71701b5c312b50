"""Reading the registry again when told it changed, rather than at the next revalidation."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request
from starlette.responses import Response
from subsidy_common.problems import ServiceUnavailable

from calculator.registry_client import SnapshotStore

REFRESH_PATH = "/internal/v1/snapshot/refresh"

router = APIRouter(include_in_schema=False)


@router.post(REFRESH_PATH, status_code=204)
async def refresh(request: Request) -> Response:
    """Revalidate the registry snapshot now (the gateway asks after a policy write): 204 once
    the registry has answered, so that the next calculation weighs what was written; 503 when
    it could not be reached, and the last good snapshot serves on."""
    store = cast(SnapshotStore, request.app.state.snapshots)
    if not await store.refresh():
        raise ServiceUnavailable("The registry could not be reached to read its snapshot.")
    return Response(status_code=204)
