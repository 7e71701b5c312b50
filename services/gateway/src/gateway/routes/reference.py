"""Reference data: regions and matters, served by the registry."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response
from subsidy_common.routing import DirectRoute

from gateway.auth.principal import PrincipalDep
from gateway.clients import lookup
from gateway.contract.reference import MatterList, RegionList
from gateway.openapi import PROBLEM_RESPONSES
from gateway.query import Cursor, Limit, forwarded

router = APIRouter(
    prefix="/v1", tags=["reference"], responses=PROBLEM_RESPONSES, route_class=DirectRoute
)


@router.get("/regions", response_model=RegionList, summary="行政区划与园区")
async def list_regions(
    request: Request, _: PrincipalDep, limit: Limit = 50, cursor: Cursor = None
) -> Response:
    """The regions: provinces, cities, counties (区县) and parks (园区), parents first, a page at
    a time."""
    return await lookup.registry(request).forward(
        "GET", "/v1/regions", params=forwarded(limit=limit, cursor=cursor)
    )


@router.get("/matters", response_model=MatterList, summary="事项目录")
async def list_matters(
    request: Request, _: PrincipalDep, limit: Limit = 50, cursor: Cursor = None
) -> Response:
    """The matter keys with the attributes their clauses read, a page at a time."""
    return await lookup.registry(request).forward(
        "GET", "/v1/matters", params=forwarded(limit=limit, cursor=cursor)
    )
