"""Queries on tenants and API keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway.models import ApiKey, Tenant, TenantChange


async def active_key(session: AsyncSession, key_hash: str) -> tuple[ApiKey, Tenant] | None:
    """The unrevoked key with this digest and its enabled tenant."""
    statement = (
        select(ApiKey, Tenant)
        .join(Tenant, col(Tenant.id) == col(ApiKey.tenant_id))
        .where(
            col(ApiKey.key_hash) == key_hash,
            col(ApiKey.revoked_at).is_(None),
            col(Tenant.disabled_at).is_(None),
        )
    )
    row = (await session.execute(statement)).first()
    return (row[0], row[1]) if row is not None else None


async def tenant_by_name(session: AsyncSession, name: str) -> Tenant | None:
    """The tenant with this name, if any."""
    return (
        await session.execute(select(Tenant).where(col(Tenant.name) == name))
    ).scalar_one_or_none()


async def key_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The key with this digest, revoked or not."""
    statement = select(ApiKey).where(col(ApiKey.key_hash) == key_hash)
    return (await session.execute(statement)).scalar_one_or_none()


async def bootstrap_keys_before(session: AsyncSession, key: ApiKey) -> Sequence[ApiKey]:
    """The unrevoked bootstrap keys made before this one, locked until the transaction ends."""
    statement = (
        select(ApiKey)
        .where(
            col(ApiKey.bootstrap).is_(True),
            col(ApiKey.revoked_at).is_(None),
            col(ApiKey.created_at) < key.created_at,
            col(ApiKey.id) != key.id,
        )
        .order_by(col(ApiKey.id))
        .with_for_update()
    )
    return (await session.execute(statement)).scalars().all()


async def tenant_by_id(
    session: AsyncSession, tenant_id: str, *, lock: bool = False
) -> Tenant | None:
    """The tenant with this id, if any; locked until the transaction ends when asked."""
    return await session.get(Tenant, tenant_id, with_for_update=lock, populate_existing=lock)


async def key_of_tenant(session: AsyncSession, *, tenant_id: str, key_id: str) -> ApiKey | None:
    """The tenant's key with this id, revoked or not; another tenant's key is None."""
    statement = select(ApiKey).where(col(ApiKey.id) == key_id, col(ApiKey.tenant_id) == tenant_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def list_keys(
    session: AsyncSession, *, tenant_id: str, after: str | None, limit: int
) -> Sequence[ApiKey]:
    """A tenant's keys, revoked ones included, ordered by id, starting after a cursor."""
    statement = (
        select(ApiKey)
        .where(col(ApiKey.tenant_id) == tenant_id)
        .order_by(col(ApiKey.id))
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(col(ApiKey.id) > after)
    return (await session.execute(statement)).scalars().all()


async def active_keys(session: AsyncSession, tenant_id: str) -> Sequence[ApiKey]:
    """A tenant's unrevoked keys."""
    statement = select(ApiKey).where(
        col(ApiKey.tenant_id) == tenant_id, col(ApiKey.revoked_at).is_(None)
    )
    return (await session.execute(statement)).scalars().all()


# One lock for every change that can take an admin key out of service (a number of our own).
ADMIN_KEYS_LOCK = 0x5AD1_4B45


async def lock_active_admin_keys(session: AsyncSession) -> dict[str, str]:
    """The unrevoked keys of enabled admin tenants (key id to tenant id), read under one lock
    held until commit.

    Every change that can take an admin key out of service (a revocation, a disabled tenant, a
    new bootstrap key) takes this lock before it looks, so two of them cannot both see "another
    admin key remains" and leave none. Row locks on the keys alone would not do: disabling a
    tenant changes the tenant's row, and a change that waited for the keys' locks would still
    judge the tenants by its statement's older snapshot. The statement after the lock takes a
    snapshot of its own, which sees every change committed before. SQLite (local runs) lets one
    writer at a time in.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(ADMIN_KEYS_LOCK)))
    statement = (
        select(col(ApiKey.id), col(ApiKey.tenant_id))
        .join(Tenant, col(Tenant.id) == col(ApiKey.tenant_id))
        .where(
            col(Tenant.role) == "admin",
            col(Tenant.disabled_at).is_(None),
            col(ApiKey.revoked_at).is_(None),
        )
        .order_by(col(ApiKey.id))
        .with_for_update(of=ApiKey)
    )
    return dict((await session.execute(statement)).all())


async def list_tenants(session: AsyncSession, *, after: str | None, limit: int) -> Sequence[Tenant]:
    """Tenants ordered by id, starting after a cursor."""
    statement = select(Tenant).order_by(col(Tenant.id)).limit(limit)
    if after is not None:
        statement = statement.where(col(Tenant.id) > after)
    return (await session.execute(statement)).scalars().all()


async def list_changes(
    session: AsyncSession, *, tenant_id: str | None, before: int | None, limit: int
) -> Sequence[TenantChange]:
    """Changes newest first, of one tenant or all, starting before a cursor."""
    statement = select(TenantChange).order_by(col(TenantChange.id).desc()).limit(limit)
    if tenant_id is not None:
        statement = statement.where(col(TenantChange.tenant_id) == tenant_id)
    if before is not None:
        statement = statement.where(col(TenantChange.id) < before)
    return (await session.execute(statement)).scalars().all()


async def change_by_id(session: AsyncSession, change_id: int) -> TenantChange | None:
    """The change with this id, if any."""
    return await session.get(TenantChange, change_id)


def add(session: AsyncSession, *objects: Tenant | ApiKey | TenantChange) -> None:
    """Stage new rows in the request's transaction."""
    session.add_all(objects)
