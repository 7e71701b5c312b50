"""`/v1/admin/tenants`: the city policy office manages who may call the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.auth.principal import AdminDep
from gateway.clients.dependencies import RegionsDep
from gateway.db import SessionDep
from gateway.openapi import PROBLEM_RESPONSES
from gateway.tenants import service
from gateway.tenants.schemas import TenantCreate, TenantCreated, TenantList, TenantRead

router = APIRouter(prefix="/v1/admin/tenants", tags=["admin"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, response_model=TenantCreated, summary="创建租户")
async def create_tenant(
    data: TenantCreate, session: SessionDep, regions: RegionsDep, _: AdminDep
) -> TenantCreated:
    """Create a tenant and its first API key; the key is shown in this response only."""
    tree = await regions.tree()
    tenant, key = await service.create_tenant(session, data=data, regions=tree)
    return TenantCreated(**TenantRead.model_validate(tenant).model_dump(), api_key=key)


@router.get("", response_model=TenantList, summary="列出租户")
async def list_tenants(
    session: SessionDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=500, description="每页条数")] = 50,
    cursor: Annotated[str | None, Query(max_length=64, description="上一页返回的游标")] = None,
) -> TenantList:
    """Every tenant, a page at a time."""
    tenants, next_cursor = await service.list_tenants(session, cursor=cursor, limit=limit)
    return TenantList(
        items=[TenantRead.model_validate(t) for t in tenants], next_cursor=next_cursor
    )
