"""Creating tenants and their keys."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from subsidy_common.problems import Conflict, InvalidInput

from gateway.auth.keys import digest, display_prefix, new_key
from gateway.clients.regions import RegionTree
from gateway.models import ApiKey, Tenant
from gateway.tenants import repository
from gateway.tenants.schemas import TenantCreate


class TenantNameTaken(Conflict):
    """Another tenant already has this name."""


async def create_tenant(
    session: AsyncSession, *, data: TenantCreate, regions: RegionTree
) -> tuple[Tenant, str]:
    """Create a tenant with a first key; return the tenant and the key in clear, once."""
    if data.region not in regions:
        raise InvalidInput(
            f"Unknown region {data.region!r}.",
            errors=[{"loc": ["body", "region"], "msg": "unknown region code; see /v1/regions"}],
        )
    if await repository.tenant_by_name(session, data.name) is not None:
        raise TenantNameTaken(f"A tenant named {data.name!r} already exists.")
    now = dt.datetime.now(dt.UTC)
    tenant = Tenant(
        id=str(uuid.uuid4()), name=data.name, role=data.role, region=data.region, created_at=now
    )
    key = new_key()
    repository.add(session, tenant)
    await session.flush()  # the key row refers to the tenant row
    repository.add(session, _key_row(tenant.id, key, now))
    await session.flush()
    return tenant, key


async def ensure_admin_key(session: AsyncSession, *, key: str, region: str) -> None:
    """Make the configured first admin key valid: create its tenant on first start."""
    key_hash = digest(key)
    if await repository.key_by_hash(session, key_hash) is not None:
        return
    now = dt.datetime.now(dt.UTC)
    tenant = await repository.tenant_by_name(session, "admin")
    if tenant is None:
        tenant = Tenant(
            id=str(uuid.uuid4()), name="admin", role="admin", region=region, created_at=now
        )
        repository.add(session, tenant)
        await session.flush()  # the key row refers to the tenant row
    repository.add(session, _key_row(tenant.id, key, now))
    await session.flush()


async def list_tenants(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[Sequence[Tenant], str | None]:
    """A page of tenants and the cursor of the next page."""
    rows = await repository.list_tenants(session, after=cursor, limit=limit + 1)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def _key_row(tenant_id: str, key: str, now: dt.datetime) -> ApiKey:
    return ApiKey(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        prefix=display_prefix(key),
        key_hash=digest(key),
        created_at=now,
    )
