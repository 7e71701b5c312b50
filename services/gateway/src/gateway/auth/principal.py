"""Who is calling: the tenant behind a Bearer key, its role and its region."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from subsidy_common.problems import Forbidden, Unauthorized

from gateway.auth.keys import digest
from gateway.tenants import repository

Role = Literal["admin", "operator", "auditor"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated tenant of a request."""

    tenant_id: str
    name: str
    role: Role
    region: str
    key_id: str


class Authenticator:
    """Resolves keys to principals, remembering recent answers for a few seconds."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl: float) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, key: str) -> Principal | None:
        """The principal holding this key, or None when no active key matches."""
        key_hash = digest(key)
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._sessions() as session:
            found = await repository.active_key(session, key_hash)
        principal = None
        if found is not None:
            api_key, tenant = found
            principal = Principal(
                tenant_id=tenant.id,
                name=tenant.name,
                role=tenant.role,  # type: ignore[arg-type]  # checked by the database
                region=tenant.region,
                key_id=api_key.id,
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_hash] = (now + self._ttl, principal)
        return principal

    def forget(self) -> None:
        """Drop every remembered answer (after a key is revoked or a tenant disabled)."""
        self._cache.clear()


bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="API key",
    description="租户的 API 密钥：Authorization: Bearer <api key>",
)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, or 401 when the request carries no key or a key nobody issued."""
    if credentials is None:
        raise Unauthorized("An API key is required: send Authorization: Bearer <api key>.")
    key = credentials.credentials.strip()
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.principal(key)
    if principal is None:
        raise Unauthorized("The API key is not valid, or it was revoked.")
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def admin_principal(principal: PrincipalDep) -> Principal:
    """The caller when it is an admin; 403 for every other role."""
    if principal.role != "admin":
        raise Forbidden(
            f"This operation needs the admin role; this key's role is {principal.role}."
        )
    return principal


AdminDep = Annotated[Principal, Depends(admin_principal)]
