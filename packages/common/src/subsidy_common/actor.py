"""Who made a change, carried between services in the `X-Actor` header.

Tenant names are Chinese; HTTP header values are Latin-1, so the name travels percent-encoded.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

ACTOR_HEADER = "X-Actor"


def encode_actor(name: str, tenant_id: str) -> str:
    """The header value naming a tenant."""
    return quote(f"{name} [{tenant_id}]", safe=" []")


def decode_actor(value: str) -> str:
    """The actor as it is recorded: `name [tenant id]`."""
    return unquote(value)
