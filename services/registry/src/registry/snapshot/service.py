"""The compiled rule set the calculator fetches: everything in force in the registry at an
instant, with a content-hash version that doubles as its ETag."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from subsidy_common.problems import InvalidInput

from registry.documents import repository
from registry.reference_data import current_reference, reference_as_of


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A serialised rule set and its version."""

    version: str
    body: bytes

    @property
    def etag(self) -> str:
        """The snapshot's strong ETag."""
        return f'"{self.version}"'


PAST_SNAPSHOTS = 32


class SnapshotCache:
    """The snapshot of the current registry, rebuilt only after a write; and snapshots of past
    instants, built once for each state the registry was in."""

    def __init__(self) -> None:
        self._generation: repository.Generation | None = None
        self._snapshot: Snapshot | None = None
        self._past: OrderedDict[tuple[repository.Generation, dt.datetime | None], Snapshot] = (
            OrderedDict()
        )

    async def current(self, session: AsyncSession) -> Snapshot:
        """The snapshot of the registry as it is now."""
        generation = await repository.generation(session)
        if self._snapshot is None or generation != self._generation:
            self._snapshot = await build(session, as_of=None)
            self._generation = generation
        return self._snapshot

    async def as_of(self, session: AsyncSession, instant: dt.datetime) -> Snapshot:
        """The snapshot of the registry as recorded at an instant.

        Instants with the same last change before them saw the same registry. The key also holds
        the registry's write generation, so a write (however its time compares) starts afresh.
        """
        await repository.settle_writes(session, instant)
        key = await repository.state_at(session, instant)
        if key[1] is None:
            raise await _nothing_recorded(session, instant)
        snapshot = self._past.get(key)
        if snapshot is None:
            snapshot = self._past[key] = await build(session, as_of=instant)
            if len(self._past) > PAST_SNAPSHOTS:
                self._past.popitem(last=False)
        else:
            self._past.move_to_end(key)
        return snapshot


async def _nothing_recorded(session: AsyncSession, instant: dt.datetime) -> InvalidInput:
    """An instant before the registry's first record: a calculation with the registry as it was
    then would find no policy at all, and say that nothing is due."""
    first = await repository.first_recorded(session)
    said = (
        "the registry has recorded nothing yet"
        if first is None
        else f"is before the registry's first record, at {first.isoformat()}"
    )
    return InvalidInput(
        f"The registry had recorded nothing at {instant.isoformat()}.",
        errors=[{"loc": ["query", "as_of"], "msg": said}],
    )


async def build(session: AsyncSession, *, as_of: dt.datetime | None) -> Snapshot:
    """Serialise regions, matters and every current document version (or as of an instant)."""
    versions = await repository.current_versions(session, as_of=as_of)
    reference = (
        await current_reference(session) if as_of is None else await reference_as_of(session, as_of)
    )
    content: dict[str, Any] = {
        **reference,
        "documents": [
            {**v.content, "registry_version": v.version} for v in versions if v.content["clauses"]
        ],
    }
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    version = hashlib.sha256(canonical).hexdigest()[:32]
    body = orjson.dumps({"version": version, **content}, option=orjson.OPT_SORT_KEYS)
    return Snapshot(version=version, body=body)
