"""The region tree, read from the registry and kept for a minute."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.clients.downstream import Downstream


@dataclass(frozen=True, slots=True)
class RegionTree:
    """Codes and parents of every region."""

    parents: dict[str, str | None]

    def __contains__(self, code: object) -> bool:
        return code in self.parents

    def within(self, code: str, ancestor: str) -> bool:
        """Whether `code` is `ancestor` or lies under it."""
        seen: str | None = code
        while seen is not None:
            if seen == ancestor:
                return True
            seen = self.parents.get(seen)
        return False


class RegionDirectory:
    """Cached access to the registry's regions."""

    def __init__(self, registry: Downstream, ttl: float = 60.0) -> None:
        self._registry = registry
        self._ttl = ttl
        self._tree: RegionTree | None = None
        self._expires = 0.0

    async def tree(self) -> RegionTree:
        """The current tree, fetched again once it is older than the TTL."""
        now = time.monotonic()
        if self._tree is None or now >= self._expires:
            parents: dict[str, str | None] = {}
            params = {"limit": "500"}
            while True:  # every page
                body = await self._registry.json("GET", "/v1/regions", params=params)
                parents.update((item["code"], item["parent"]) for item in body["items"])
                if body.get("next_cursor") is None:
                    break
                params = {"limit": "500", "cursor": body["next_cursor"]}
            self._tree = RegionTree(parents)
            self._expires = now + self._ttl
        return self._tree
