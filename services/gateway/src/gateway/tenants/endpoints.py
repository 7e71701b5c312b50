"""`/v1/admin/tenants`: the city policy office manages who may call the API, and with which keys."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from subsidy_common.actor import recorded_actor
from subsidy_common.problems import validated_body

from gateway.auth.principal import AdminDep, Principal, ReaderDep, authenticator
from gateway.auth.revocations import announce
from gateway.bodies import checked
from gateway.clients import lookup
from gateway.db import SessionDep
from gateway.openapi import CONFLICT, NOT_FOUND, PROBLEM_RESPONSES, json_body
from gateway.query import Limit
from gateway.tenants import service
from gateway.tenants.schemas import (
    KeyIssue,
    KeyIssued,
    KeyList,
    KeyRead,
    TenantChangeList,
    TenantChangeRead,
    TenantCreate,
    TenantCreated,
    TenantList,
    TenantRead,
)

router = APIRouter(prefix="/v1/admin/tenants", tags=["admin"], responses=PROBLEM_RESPONSES)
audit_router = APIRouter(tags=["admin"], responses=PROBLEM_RESPONSES)

log = logging.getLogger(__name__)

TenantId = Annotated[str, Path(max_length=36, description="租户标识")]
KeyId = Annotated[str, Path(max_length=36, description="密钥标识")]
Cursor = Annotated[str | None, Query(max_length=64, description="上一页返回的游标")]


@router.post(
    "",
    status_code=201,
    response_model=TenantCreated,
    summary="创建租户",
    openapi_extra=json_body("TenantCreate"),
)
async def create_tenant(
    request: Request, session: SessionDep, principal: AdminDep
) -> TenantCreated:
    """Create a tenant and its first API key; the key is shown in this response only."""
    data = (await checked(request, TenantCreate))[1]
    tree = await lookup.regions(request).tree()
    tenant, key = await service.create_tenant(
        session, data=data, regions=tree, actor=_actor(principal)
    )
    log.info(
        "tenant created",
        extra={
            "tenant_id": tenant.id,
            "role": tenant.role,
            "region": tenant.region,
            "by": principal.tenant_id,
        },
    )
    return TenantCreated(**TenantRead.model_validate(tenant).model_dump(), api_key=key)


@router.get("", response_model=TenantList, summary="列出租户")
async def list_tenants(
    session: SessionDep, _: ReaderDep, limit: Limit = 50, cursor: Cursor = None
) -> TenantList:
    """Every tenant, a page at a time."""
    tenants, next_cursor = await service.list_tenants(session, cursor=cursor, limit=limit)
    return TenantList(
        items=[TenantRead.model_validate(t) for t in tenants], next_cursor=next_cursor
    )


@router.post(
    "/{tenant_id}/keys",
    status_code=201,
    response_model=KeyIssued,
    summary="签发或轮换密钥",
    description=(
        "为租户签发一个新的 API 密钥，密钥明文仅在本次响应中显示一次，库中只存摘要。"
        '请求体 `{"revoke_others": true}` 表示轮换：同时吊销该租户其他全部有效密钥；'
        "缺省时新旧密钥并存，便于对方系统平滑切换后再逐个吊销旧密钥。"
        "已停用的租户不能签发密钥（409）。"
    ),
    responses={**NOT_FOUND, **CONFLICT},
    openapi_extra=json_body("KeyIssue", required=False),
)
async def issue_key(
    tenant_id: TenantId, session: SessionDep, request: Request, principal: AdminDep
) -> KeyIssued:
    """Issue a new key for a tenant, optionally revoking all its other keys (rotation). The
    body may be left out: then only a new key is issued."""
    sent = await request.body()
    body = validated_body(KeyIssue, sent) if sent.strip() else None
    revoke_others = body is not None and body.revoke_others
    row, key, revoked = await service.issue_key(
        session, tenant_id=tenant_id, revoke_others=revoke_others, actor=_actor(principal)
    )
    if revoked:
        await _commit_then_forget(session, request)
    log.info(
        "api key issued",
        extra={
            "tenant_id": tenant_id,
            "key_id": row.id,
            "revoked_key_ids": [k.id for k in revoked],
            "by": principal.tenant_id,
        },
    )
    return KeyIssued(
        **KeyRead.model_validate(row).model_dump(),
        api_key=key,
        revoked_key_ids=[k.id for k in revoked],
    )


@router.get(
    "/{tenant_id}/keys",
    response_model=KeyList,
    summary="列出租户的密钥",
    description=(
        "租户的全部密钥（含已吊销的），只给出标识、前几位、签发与吊销时间，从不返回密钥本身。"
    ),
    responses=NOT_FOUND,
)
async def list_keys(
    tenant_id: TenantId, session: SessionDep, _: ReaderDep, limit: Limit = 50, cursor: Cursor = None
) -> KeyList:
    """A tenant's keys, revoked ones included, without the keys themselves."""
    keys, next_cursor = await service.list_keys(
        session, tenant_id=tenant_id, cursor=cursor, limit=limit
    )
    return KeyList(items=[KeyRead.model_validate(k) for k in keys], next_cursor=next_cursor)


@router.post(
    "/{tenant_id}/keys/{key_id}/revoke",
    response_model=KeyRead,
    summary="吊销密钥",
    description=(
        "吊销租户的一个密钥。提交后各网关实例（进程与副本）立即拒绝该密钥（PostgreSQL 上经 "
        "NOTIFY 通知）；某实例与数据库的通知连接中断时，其缓存的认证结果最多保留 "
        "GATEWAY_KEY_CACHE_SECONDS 秒（缺省 10 秒）。"
        "重复吊销不改变任何内容。不能吊销最后一个有效的管理员密钥（409），以免无人能再管理租户："
        "请先签发新的管理员密钥。"
    ),
    responses={**NOT_FOUND, **CONFLICT},
)
async def revoke_key(
    tenant_id: TenantId,
    key_id: KeyId,
    session: SessionDep,
    request: Request,
    principal: AdminDep,
) -> KeyRead:
    """Revoke one key: at once in every gateway process that listens for revocations."""
    key = await service.revoke_key(
        session, tenant_id=tenant_id, key_id=key_id, actor=_actor(principal)
    )
    await _commit_then_forget(session, request)
    log.info(
        "api key revoked",
        extra={"tenant_id": tenant_id, "key_id": key_id, "by": principal.tenant_id},
    )
    return KeyRead.model_validate(key)


@router.post(
    "/{tenant_id}/disable",
    response_model=TenantRead,
    summary="停用租户",
    description=(
        "停用租户：其全部密钥随即失效（各网关实例立即生效；通知连接中断的实例在 "
        "GATEWAY_KEY_CACHE_SECONDS 秒内生效），租户及其申报记录保留。重复停用不改变任何内容。"
        "不能停用持有最后有效管理员密钥的管理员租户（409）。"
    ),
    responses={**NOT_FOUND, **CONFLICT},
)
async def disable_tenant(
    tenant_id: TenantId,
    session: SessionDep,
    request: Request,
    principal: AdminDep,
) -> TenantRead:
    """Disable a tenant so that none of its keys works any more."""
    tenant = await service.disable_tenant(session, tenant_id=tenant_id, actor=_actor(principal))
    await _commit_then_forget(session, request)
    log.info("tenant disabled", extra={"tenant_id": tenant_id, "by": principal.tenant_id})
    return TenantRead.model_validate(tenant)


@audit_router.get(
    "/v1/admin/audit/tenants",
    response_model=TenantChangeList,
    summary="租户与密钥变更记录",
    description=(
        "租户与密钥的每一次变更（创建租户、签发或轮换密钥、吊销密钥、停用租户、以 "
        "SUBSIDY_ADMIN_KEY 启动设定管理员密钥），记录操作人与时间，按时间倒序；记录只增不改。"
        "重复吊销、重复停用不改变任何内容，也不产生记录。政策文件的变更见 /v1/admin/audit。"
    ),
)
async def list_changes(
    session: SessionDep,
    _: ReaderDep,
    tenant_id: Annotated[str | None, Query(max_length=36, description="只看该租户")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TenantChangeList:
    """Every change to tenants and keys, newest first (admin and auditor)."""
    changes, next_cursor = await service.list_changes(
        session, tenant_id=tenant_id, cursor=cursor, limit=limit
    )
    return TenantChangeList(
        items=[TenantChangeRead.model_validate(c) for c in changes], next_cursor=next_cursor
    )


def _actor(principal: Principal) -> str:
    return recorded_actor(principal.name, principal.tenant_id)


async def _commit_then_forget(session: SessionDep, request: Request) -> None:
    # Forgetting before the commit would let a request re-cache the key as still valid. The
    # other gateway processes are told when the transaction commits (`revocations`).
    await announce(session)
    await session.commit()
    authenticator(request).forget()
