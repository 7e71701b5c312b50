"""Queries on tenants and API keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway.models import ApiKey, Tenant


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


async def list_tenants(session: AsyncSession, *, after: str | None, limit: int) -> Sequence[Tenant]:
    """Tenants ordered by id, starting after a cursor."""
    statement = select(Tenant).order_by(col(Tenant.id)).limit(limit)
    if after is not None:
        statement = statement.where(col(Tenant.id) > after)
    return (await session.execute(statement)).scalars().all()


def add(session: AsyncSession, *objects: Tenant | ApiKey) -> None:
    """Stage new rows in the request's transaction."""
    session.add_all(objects)
