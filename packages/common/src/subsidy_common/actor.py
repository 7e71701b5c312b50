"""Who made a change, carried between services in the `X-Actor` header.

Tenant names are Chinese; HTTP header values are Latin-1, so the name travels percent-encoded.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

ACTOR_HEADER = "X-Actor"
# A tenant's name of 100 characters percent-encoded (9 each for common Chinese ones, 12 for the
# rarest), and its id.
ACTOR_HEADER_LENGTH = 1300
# What the audit log and the ledger keep of an actor.
RECORDED_LENGTH = 120


def encode_actor(name: str, tenant_id: str) -> str:
    """The header value naming a tenant."""
    return quote(f"{name} [{tenant_id}]", safe=" []")


def decode_actor(value: str, limit: int = RECORDED_LENGTH) -> str:
    """The actor as it is recorded: `name [tenant id]`, the name shortened (…) to fit `limit`
    so that the tenant's id is kept whole."""
    return recorded(unquote(value), limit)


def recorded_actor(name: str, tenant_id: str) -> str:
    """A tenant as the audit logs record it, as `decode_actor` reads its header."""
    return recorded(f"{name} [{tenant_id}]")


def recorded(actor: str, limit: int = RECORDED_LENGTH) -> str:
    """An actor shortened (…) to fit `limit`, a tenant's id in brackets kept whole."""
    if len(actor) <= limit:
        return actor
    name, bracket, tenant = actor.rpartition(" [")
    if not bracket or len(tenant) + 3 > limit:
        return actor[: limit - 1] + "…"
    return f"{name[: limit - len(tenant) - 3]}… [{tenant}"
