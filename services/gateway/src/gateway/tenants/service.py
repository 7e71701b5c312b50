"""Tenants and their keys: creating, issuing, revoking, disabling, each change recorded with
who made it (`TenantChange`, append-only).

Lock-out rule: no change made through the API may leave the gateway without an active admin
key on an enabled admin tenant, or nobody could manage tenants any more. Revoking the last such
key, or disabling the tenant that holds the last ones, is refused with 409: issue another admin
key first (rotation with `revoke_others` keeps the new key, so it is always allowed). If every
admin key is lost anyway, `gateway-tenants create --role admin` on the database is the way back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from subsidy_common.problems import (
    Conflict,
    InvalidInput,
    NotFound,
    not_a_cursor,
    numbered_cursor,
)

from gateway.auth.keys import digest, display_prefix, new_key
from gateway.auth.revocations import announce
from gateway.clients.regions import RegionTree
from gateway.models import ApiKey, Tenant, TenantChange
from gateway.tenants import repository
from gateway.tenants.schemas import TenantCreate

# Who the record names for a key set by the gateway's start from its environment.
BOOTSTRAP_ACTOR = "SUBSIDY_ADMIN_KEY"


class TenantNameTaken(Conflict):
    """Another tenant already has this name."""


class TenantNotFound(NotFound):
    """No tenant has this id."""


class ApiKeyNotFound(NotFound):
    """The tenant has no key with this id."""


class TenantDisabled(Conflict):
    """The tenant is disabled, so a new key for it would not work."""


class LastAdminKey(Conflict):
    """The change would leave no active admin key, locking every administrator out."""


async def create_tenant(
    session: AsyncSession, *, data: TenantCreate, regions: RegionTree | None, actor: str
) -> tuple[Tenant, str]:
    """Create a tenant with a first key; return the tenant and the key in clear, once.

    `regions` is the registry's region tree; None where the registry cannot be asked (the
    command line), which then relies on the code's format alone.
    """
    if regions is not None and data.region not in regions:
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
    row = _key_row(tenant.id, key, now)
    repository.add(session, row, _change(now, actor, "create", tenant.id, row.id))
    await session.flush()
    return tenant, key


@dataclass(frozen=True, slots=True)
class BootstrapKey:
    """What a start made of SUBSIDY_ADMIN_KEY: its key, the keys it replaced, or why it cannot
    be the admin key (and then it replaced nothing)."""

    key_id: str | None
    replaced_key_ids: list[str]
    refused: str | None = None


async def ensure_admin_key(
    sessions: async_sessionmaker[AsyncSession], *, key: str, region: str
) -> BootstrapKey:
    """Make SUBSIDY_ADMIN_KEY the bootstrap key, and revoke the bootstrap keys made before it.

    On first start the key is created, with its tenant named admin. A key already on record
    keeps its state, and is marked as the bootstrap key (one made before keys were marked, or an
    admin key issued through the API and configured since). Only a key that works as an admin
    key replaces anything: one revoked, of a disabled tenant or of another role is refused, and
    the bootstrap keys before it keep working, so a mistaken setting cannot lock every
    administrator out. Only older bootstrap keys are revoked, so a replica restarting with the
    previous key during a rolling update revokes nothing newer; other keys issued through the
    API are never touched. Replicas starting together on a new database all ask; one writes, and
    the others, refused by the unique name or key, look again and find it.
    """

    async def attempt() -> BootstrapKey:
        async with sessions() as session:
            made = await _ensure_admin_key(session, key=key, region=region)
            if made.replaced_key_ids:
                await announce(session)
            await session.commit()
            return made

    try:
        return await attempt()
    except IntegrityError:  # another replica wrote the same tenant or key meanwhile
        return await attempt()


async def _ensure_admin_key(session: AsyncSession, *, key: str, region: str) -> BootstrapKey:
    now = dt.datetime.now(dt.UTC)
    row = await repository.key_by_hash(session, digest(key))
    if row is None:
        tenant = await repository.tenant_by_name(session, "admin")
        if tenant is None:
            tenant = Tenant(
                id=str(uuid.uuid4()), name="admin", role="admin", region=region, created_at=now
            )
            repository.add(session, tenant)
            await session.flush()  # the key row refers to the tenant row
        elif (refused := _not_an_admin(tenant)) is not None:
            return BootstrapKey(key_id=None, replaced_key_ids=[], refused=refused)
        row = _key_row(tenant.id, key, now, bootstrap=True)
        repository.add(session, row)
        await session.flush()
        changed = True
    else:
        owner = await repository.tenant_by_id(session, row.tenant_id)
        assert owner is not None  # a key's tenant is never deleted
        refused = "it is a revoked key" if row.revoked_at is not None else _not_an_admin(owner)
        if refused is not None:
            return BootstrapKey(key_id=row.id, replaced_key_ids=[], refused=refused)
        changed = not row.bootstrap
        row.bootstrap = True
    await repository.lock_active_admin_keys(session)  # one at a time with the API's changes
    replaced = await repository.bootstrap_keys_before(session, row)
    for old in replaced:
        old.revoked_at = now
    if changed or replaced:  # a start with the same key as before records nothing
        change = _change(now, BOOTSTRAP_ACTOR, "bootstrap", row.tenant_id, row.id, replaced)
        repository.add(session, change)
    await session.flush()
    return BootstrapKey(key_id=row.id, replaced_key_ids=[k.id for k in replaced])


def _not_an_admin(tenant: Tenant) -> str | None:
    """Why a key of this tenant could not be the admin key, or None if it could."""
    if tenant.role != "admin":
        return f"its tenant {tenant.name!r} has the role {tenant.role}, not admin"
    if tenant.disabled_at is not None:
        return f"its tenant {tenant.name!r} is disabled"
    return None


async def list_tenants(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[Sequence[Tenant], str | None]:
    """A page of tenants and the cursor of the next page (a tenant's id)."""
    if cursor is not None and await repository.tenant_by_id(session, cursor) is None:
        raise not_a_cursor()
    rows = await repository.list_tenants(session, after=cursor, limit=limit + 1)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


async def issue_key(
    session: AsyncSession, *, tenant_id: str, revoke_others: bool, actor: str
) -> tuple[ApiKey, str, list[ApiKey]]:
    """Issue a new key; return it, the key in clear (once), and the keys it revoked."""
    tenant = await _tenant(session, tenant_id, lock=True)
    if tenant.disabled_at is not None:
        raise TenantDisabled(f"Tenant {tenant_id} is disabled; a new key would not work.")
    now = dt.datetime.now(dt.UTC)
    revoked: list[ApiKey] = []
    if revoke_others:
        for old in await repository.active_keys(session, tenant_id):
            old.revoked_at = now
            revoked.append(old)
    key = new_key()
    row = _key_row(tenant.id, key, now)
    repository.add(session, row, _change(now, actor, "issue_key", tenant.id, row.id, revoked))
    await session.flush()
    return row, key, revoked


async def list_keys(
    session: AsyncSession, *, tenant_id: str, cursor: str | None, limit: int
) -> tuple[Sequence[ApiKey], str | None]:
    """A page of a tenant's keys and the cursor of the next page (a key's id)."""
    await _tenant(session, tenant_id)
    if cursor is not None and (
        await repository.key_of_tenant(session, tenant_id=tenant_id, key_id=cursor) is None
    ):
        raise not_a_cursor()
    rows = await repository.list_keys(session, tenant_id=tenant_id, after=cursor, limit=limit + 1)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


async def revoke_key(session: AsyncSession, *, tenant_id: str, key_id: str, actor: str) -> ApiKey:
    """Revoke one key of a tenant; revoking a revoked key changes nothing."""
    tenant = await _tenant(session, tenant_id, lock=True)
    key = await repository.key_of_tenant(session, tenant_id=tenant_id, key_id=key_id)
    if key is None:
        raise ApiKeyNotFound(f"Tenant {tenant_id} has no key {key_id}.")
    if key.revoked_at is not None:
        return key
    if tenant.role == "admin":
        locked = await repository.lock_active_admin_keys(session)
        _keep_an_admin_key(set(locked) - {key.id})
    key.revoked_at = dt.datetime.now(dt.UTC)
    repository.add(session, _change(key.revoked_at, actor, "revoke_key", tenant_id, key.id))
    await session.flush()
    return key


async def disable_tenant(session: AsyncSession, *, tenant_id: str, actor: str) -> Tenant:
    """Disable a tenant, so none of its keys works; disabling it again changes nothing."""
    tenant = await _tenant(session, tenant_id, lock=True)
    if tenant.disabled_at is not None:
        return tenant
    if tenant.role == "admin":
        locked = await repository.lock_active_admin_keys(session)
        _keep_an_admin_key({k for k, owner in locked.items() if owner != tenant_id})
    tenant.disabled_at = dt.datetime.now(dt.UTC)
    repository.add(session, _change(tenant.disabled_at, actor, "disable", tenant_id, None))
    await session.flush()
    return tenant


async def list_changes(
    session: AsyncSession, *, tenant_id: str | None, cursor: str | None, limit: int
) -> tuple[Sequence[TenantChange], str | None]:
    """A page of changes, newest first, and the cursor of the next page (a change's id)."""
    before = numbered_cursor(cursor)
    if before is not None:
        found = await repository.change_by_id(session, before)
        if found is None or (tenant_id is not None and found.tenant_id != tenant_id):
            raise not_a_cursor()
    rows = await repository.list_changes(
        session, tenant_id=tenant_id, before=before, limit=limit + 1
    )
    if len(rows) > limit:
        return rows[:limit], str(rows[limit - 1].id)
    return rows, None


async def _tenant(session: AsyncSession, tenant_id: str, *, lock: bool = False) -> Tenant:
    """The tenant, or 404. Changes to its keys and state lock it, so that two made at once
    (two rotations, a rotation and a disable) are made one after the other."""
    tenant = await repository.tenant_by_id(session, tenant_id, lock=lock)
    if tenant is None:
        raise TenantNotFound(f"No tenant {tenant_id}.")
    return tenant


def _keep_an_admin_key(remaining: set[str]) -> None:
    if not remaining:
        raise LastAdminKey(
            "This would leave no active admin key and lock every administrator out; "
            "issue another admin key first."
        )


def _change(
    at: dt.datetime,
    actor: str,
    action: str,
    tenant_id: str,
    key_id: str | None,
    revoked: Sequence[ApiKey] = (),
) -> TenantChange:
    return TenantChange(
        at=at,
        actor=actor,
        action=action,
        tenant_id=tenant_id,
        key_id=key_id,
        revoked_key_ids=[k.id for k in revoked],
    )


def _key_row(tenant_id: str, key: str, now: dt.datetime, *, bootstrap: bool = False) -> ApiKey:
    return ApiKey(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        prefix=display_prefix(key),
        key_hash=digest(key),
        created_at=now,
        bootstrap=bootstrap,
    )
