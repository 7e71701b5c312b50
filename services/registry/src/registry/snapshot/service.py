"""The compiled rule set the calculator fetches: everything in force in the registry at an
instant, with a content-hash version that doubles as its ETag."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from registry.documents import repository
from registry.matters import repository as matter_repository
from registry.regions import repository as region_repository


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A serialised rule set and its version."""

    version: str
    body: bytes

    @property
    def etag(self) -> str:
        """The snapshot's strong ETag."""
        return f'"{self.version}"'


class SnapshotCache:
    """The snapshot of the current registry, rebuilt only after a write."""

    def __init__(self) -> None:
        self._generation = -1
        self._snapshot: Snapshot | None = None

    async def current(self, session: AsyncSession) -> Snapshot:
        """The snapshot of the registry as it is now."""
        generation = await repository.latest_change(session)
        if self._snapshot is None or generation != self._generation:
            self._snapshot = await build(session, as_of=None)
            self._generation = generation
        return self._snapshot


async def build(session: AsyncSession, *, as_of: dt.datetime | None) -> Snapshot:
    """Serialise regions, matters and every current document version (or as of an instant)."""
    versions = await repository.current_versions(session, as_of=as_of)
    regions = await region_repository.list_regions(session)
    matters = await matter_repository.list_matters(session)
    content: dict[str, Any] = {
        "regions": [
            {"code": r.code, "name": r.name, "parent": r.parent, "level": r.level} for r in regions
        ],
        "matters": [
            {
                "key": m.key,
                "name": m.name,
                "beneficiaries": m.beneficiaries,
                "attributes": m.attributes,
                "strategy": m.strategy,
            }
            for m in matters
        ],
        "documents": [
            {**v.content, "registry_version": v.version} for v in versions if v.content["clauses"]
        ],
    }
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    version = hashlib.sha256(canonical).hexdigest()[:32]
    body = orjson.dumps({"version": version, **content}, option=orjson.OPT_SORT_KEYS)
    return Snapshot(version=version, body=body)
