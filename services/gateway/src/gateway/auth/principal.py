"""Who is calling: the tenant behind a Bearer key, its role and its region."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from subsidy_common.middleware import add_response_headers
from subsidy_common.problems import DomainError, Forbidden, Unauthorized, problem_type

from gateway.auth.keys import MAX_KEY_CHARS, digest, well_formed
from gateway.auth.ratelimit import TenantRateLimiter
from gateway.tenants import repository

Role = Literal["admin", "operator", "auditor"]

# Answers remembered, each for `ttl` seconds. Keys that work are as many as the tenants' keys;
# the oldest answer goes first if there are ever more. Keys that do not are whatever a client
# makes up: a few are remembered apart, so that they can never push out the keys that work.
VALID_KEYS_REMEMBERED = 10_000
REFUSED_KEYS_REMEMBERED = 1_000

_V = TypeVar("_V")


class AmbiguousCredentials(DomainError):
    """A request with more than one Authorization header: which key speaks is not clear."""

    type = problem_type("ambiguous-credentials")
    title = "Bad Request"
    status = 400


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated tenant of a request."""

    tenant_id: str
    name: str
    role: Role
    region: str
    key_id: str


class Authenticator:
    """Resolves keys to principals, remembering recent answers for a few seconds.

    A string that cannot be a key of ours (`keys.well_formed`) is refused without a lookup.
    A key that is not on record is remembered apart from those that are, in a small cache of
    its own, so that made-up keys neither reach the database again nor push out valid keys.

    A revoked key or a disabled tenant stops working in this process as soon as `forget` is
    called after the change is committed, and in the other gateway processes when the change's
    notification reaches them (`revocations`). A process whose listening connection is down
    holds its answers for at most `ttl` seconds (GATEWAY_KEY_CACHE_SECONDS).

    One lookup per key at a time: the requests that find an answer expired while its lookup is
    under way wait for that lookup. When each made its own, a busy tenant's answer expiring sent
    every request of the next few milliseconds to the database at once, and the gateway stood
    still for up to 170 ms every `ttl` seconds (bench/RESULTS.md, ninth series).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl: float) -> None:
        self._sessions = sessions
        self._ttl = ttl
        # A plain dict, read on every request; the refusals, under attack, churn through an
        # OrderedDict, which lets its oldest entry go at a constant cost.
        self._valid: dict[str, tuple[float, Principal]] = {}
        self._refused: OrderedDict[str, float] = OrderedDict()
        self._lookups: dict[str, asyncio.Future[Principal | None]] = {}
        self._generation = 0

    async def principal(self, key: str) -> Principal | None:
        """The principal holding this key, or None when no active key matches."""
        if len(key) > MAX_KEY_CHARS:  # not worth its digest
            return None
        key_hash = digest(key)
        cached = self._valid.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if not well_formed(key):
            return None
        refused_until = self._refused.get(key_hash)
        if refused_until is not None and refused_until > time.monotonic():
            return None
        lookup = self._lookups.get(key_hash)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(key_hash))
            self._lookups[key_hash] = lookup
            lookup.add_done_callback(functools.partial(self._looked_up, key_hash))
        # A waiter that is cancelled (its client went away) must not cancel the others' lookup.
        return await asyncio.shield(lookup)

    def _looked_up(self, key_hash: str, lookup: asyncio.Future[Principal | None]) -> None:
        if self._lookups.get(key_hash) is lookup:
            del self._lookups[key_hash]
        if not lookup.cancelled():
            lookup.exception()  # retrieved, even when every waiter has gone

    async def _look_up(self, key_hash: str) -> Principal | None:
        now = time.monotonic()
        generation = self._generation
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
        # A lookup that overlapped a `forget` may have read the key before its revocation.
        if generation == self._generation:
            expires = now + self._ttl
            if principal is None:
                self._valid.pop(key_hash, None)  # revoked meanwhile
                _remember(self._refused, key_hash, expires, REFUSED_KEYS_REMEMBERED)
            else:
                _remember(self._valid, key_hash, (expires, principal), VALID_KEYS_REMEMBERED)
        return principal

    def forget(self) -> None:
        """Drop every remembered answer (after a key is revoked or a tenant disabled)."""
        self._generation += 1
        self._valid.clear()
        self._refused.clear()
        self._lookups.clear()  # one under way may have read the key before the change


def _remember(cache: dict[str, _V], key_hash: str, value: _V, size: int) -> None:
    """Keep an answer as the newest, letting the oldest go beyond `size`."""
    cache.pop(key_hash, None)
    cache[key_hash] = value
    while len(cache) > size:
        del cache[next(iter(cache))]


def authenticator(request: Request) -> Authenticator:
    """The key resolver of this app."""
    return cast(Authenticator, request.app.state.authenticator)


class TenantKey(HTTPBearer):
    """The tenant's API key: the security scheme the OpenAPI document declares, resolved to the
    caller in the same step.

    One dependency instead of three (a scheme, a resolver and a caller): FastAPI walks each
    dependency of a route on every request, and those three were a fifth of the gateway's
    in-process work per request (bench/RESULTS.md, sixth series).
    """

    def __init__(self, *, counted: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self.counted = counted

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        """The caller, or 401 when the request carries no key or a key nobody issued.

        Every authenticated request also counts against its tenant's rate limit here, so no
        route can forget it: 429 once the tenant is over its limit. Only the scheme that
        guards /metrics is built not `counted`.
        """
        if len(request.headers.getlist("authorization")) > 1:
            # The first would speak, whichever key the client meant.
            raise AmbiguousCredentials("Send one Authorization header; this request has several.")
        credentials = await super().__call__(request)
        if credentials is None:
            raise Unauthorized("An API key is required: send Authorization: Bearer <api key>.")
        principal = await authenticator(request).principal(credentials.credentials.strip())
        if principal is None:
            raise Unauthorized("The API key is not valid, or it was revoked.")
        request.state.principal = principal
        if self.counted:
            limiter: TenantRateLimiter = request.app.state.rate_limiter
            quota = await limiter.hit(principal.tenant_id)
            if quota is not None:
                add_response_headers(request, quota.headers())
        return principal


tenant_key = TenantKey(
    auto_error=False,
    bearerFormat="API key",
    description="租户的 API 密钥：Authorization: Bearer <api key>",
    scheme_name="HTTPBearer",
)


PrincipalDep = Annotated[Principal, Depends(tenant_key)]


async def admin_principal(principal: PrincipalDep) -> Principal:
    """The caller when it is an admin; 403 for every other role."""
    if principal.role != "admin":
        raise Forbidden(
            f"This operation needs the admin role; this key's role is {principal.role}."
        )
    return principal


AdminDep = Annotated[Principal, Depends(admin_principal)]


async def reader_principal(principal: PrincipalDep) -> Principal:
    """The caller when it may read everything: an admin, or an auditor; 403 for an operator."""
    return _reader(principal)


ReaderDep = Annotated[Principal, Depends(reader_principal)]

# Prometheus scrapes the gateway's /metrics with a key of an admin or auditor tenant. Scrapes
# are not counted against that tenant's rate limit: monitoring must go on while it is busy.
metrics_key = TenantKey(auto_error=False, counted=False, scheme_name="HTTPBearer")


async def metrics_reader(principal: Annotated[Principal, Depends(metrics_key)]) -> Principal:
    """The caller of /metrics: an admin or an auditor; 401 without a key, 403 for an operator."""
    return _reader(principal)


def _reader(principal: Principal) -> Principal:
    if principal.role not in ("admin", "auditor"):
        raise Forbidden(
            f"This operation needs the admin or auditor role; this key's role is {principal.role}."
        )
    return principal
