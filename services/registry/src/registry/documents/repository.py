"""Queries on document versions and the audit log."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy
from sqlalchemy import String, cast, func, insert, or_, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from registry.models import AuditEntry, DocumentVersion, ReferenceVersion, Region

# Ids per `IN (…)` list: well under SQLite's limit on bound parameters in one statement.
_IN_CHUNK = 500
# The registry's write lock (`serialise_writers`); a read as of a recent instant shares it.
_WRITE_LOCK = "hashtext('registry:write')"
# Longer than any write holds its stamp before it commits: a read as of an instant older than
# this cannot meet a write still to commit with a stamp before it.
SETTLED_SECONDS = 60


def _as_recorded_at(instant: dt.datetime | None):  # type: ignore[no-untyped-def]
    if instant is None:
        return col(DocumentVersion.superseded_at).is_(None)
    return (col(DocumentVersion.recorded_at) <= instant) & or_(
        col(DocumentVersion.superseded_at).is_(None), col(DocumentVersion.superseded_at) > instant
    )


async def current_versions(
    session: AsyncSession, *, as_of: dt.datetime | None = None
) -> Sequence[DocumentVersion]:
    """The version of every document in force in the registry now, or as recorded at `as_of`."""
    statement = (
        select(DocumentVersion)
        .where(_as_recorded_at(as_of))
        .order_by(col(DocumentVersion.document_id))
    )
    return (await session.execute(statement)).scalars().all()


async def current_relations(
    session: AsyncSession,
) -> tuple[dict[str, list[Any]], dict[str, set[str]], dict[str, str]]:
    """Every document in the registry now, with the supersession links its content records,
    the names of the caps its clauses share (their `cumulative_key`), and its 文号 if it has
    one."""
    statement = select(
        col(DocumentVersion.document_id),
        col(DocumentVersion.content)["supersedes"],
        col(DocumentVersion.content)["clauses"],
        col(DocumentVersion.content)["doc_no"],
    ).where(_as_recorded_at(None))
    links: dict[str, list[Any]] = {}
    caps: dict[str, set[str]] = {}
    doc_nos: dict[str, str] = {}
    for document_id, supersedes, clauses, doc_no in (await session.execute(statement)).all():
        links[document_id] = supersedes or []
        caps[document_id] = {
            key
            for clause in clauses or []
            if (key := (clause.get("caps") or {}).get("cumulative_key"))
        }
        if doc_no:
            doc_nos[document_id] = doc_no
    return links, caps, doc_nos


async def current_version(
    session: AsyncSession, document_id: str, *, as_of: dt.datetime | None = None, lock: bool = False
) -> DocumentVersion | None:
    """One document's current version (or as recorded at `as_of`)."""
    statement = select(DocumentVersion).where(
        col(DocumentVersion.document_id) == document_id, _as_recorded_at(as_of)
    )
    if lock:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def current_versions_of(
    session: AsyncSession, document_ids: Sequence[str], *, lock: bool = False
) -> dict[str, DocumentVersion]:
    """The current version of each of these documents that has one, by document id."""
    found: dict[str, DocumentVersion] = {}
    for start in range(0, len(document_ids), _IN_CHUNK):
        statement = select(DocumentVersion).where(
            col(DocumentVersion.document_id).in_(document_ids[start : start + _IN_CHUNK]),
            _as_recorded_at(None),
        )
        if lock:
            statement = statement.with_for_update()
        for version in (await session.execute(statement)).scalars():
            found[version.document_id] = version
    return found


async def recorded(session: AsyncSession, document_id: str) -> bool:
    """Whether any version of a document was ever recorded."""
    statement = select(col(DocumentVersion.id)).where(
        col(DocumentVersion.document_id) == document_id
    )
    return (await session.execute(statement.limit(1))).first() is not None


async def versions(session: AsyncSession, document_id: str) -> Sequence[DocumentVersion]:
    """Every recorded version of a document, oldest first."""
    statement = (
        select(DocumentVersion)
        .where(col(DocumentVersion.document_id) == document_id)
        .order_by(col(DocumentVersion.version))
    )
    return (await session.execute(statement)).scalars().all()


async def last_file_hashes(session: AsyncSession) -> dict[str, str | None]:
    """Each document's file hash as last loaded from a policy file, in one query."""
    latest = (
        select(
            col(DocumentVersion.document_id).label("document_id"),
            func.max(col(DocumentVersion.version)).label("version"),
        )
        .where(col(DocumentVersion.origin) == "file")
        .group_by(col(DocumentVersion.document_id))
        .subquery()
    )
    statement = select(col(DocumentVersion.document_id), col(DocumentVersion.file_hash)).join(
        latest,
        (col(DocumentVersion.document_id) == latest.c.document_id)
        & (col(DocumentVersion.version) == latest.c.version),
    )
    return {row.document_id: row.file_hash for row in (await session.execute(statement)).all()}


async def close(session: AsyncSession, version: DocumentVersion, at: dt.datetime) -> None:
    """End a version's transaction-time interval (the one change a version ever gets)."""
    await session.execute(
        update(DocumentVersion)
        .where(col(DocumentVersion.id) == version.id, col(DocumentVersion.superseded_at).is_(None))
        .values(superseded_at=at)
    )
    version.superseded_at = at


def add(session: AsyncSession, *rows: DocumentVersion | AuditEntry) -> None:
    """Stage new rows in the request's transaction."""
    session.add_all(rows)


async def insert_many(
    session: AsyncSession,
    model: type[DocumentVersion] | type[AuditEntry],
    rows: Sequence[dict[str, Any]],
) -> None:
    """Insert rows in one statement per batch, without reading their ids back."""
    if rows:
        await session.flush()  # whatever is staged lands first
        await session.execute(insert(model), list(rows))


Generation = tuple[int, int, int]


def _generation() -> Any:
    """How many versions are recorded, the newest's id, and how many versions of the regions
    and matters. Every write records a version, so every committed write changes it, even one
    that took its id before another write committed (the newest id alone would stay the same)."""
    references = select(func.count(col(ReferenceVersion.id))).scalar_subquery()
    return select(
        func.count(col(DocumentVersion.id)),
        func.coalesce(func.max(DocumentVersion.id), 0),
        references,
    )


async def generation(session: AsyncSession) -> Generation:
    """The registry's write generation."""
    count, newest, references = (await session.execute(_generation())).one()
    return count, newest, references


async def first_recorded(session: AsyncSession) -> dt.datetime | None:
    """When the registry recorded its first document or reference data; None if it has not."""
    documents = select(func.min(DocumentVersion.recorded_at)).scalar_subquery()
    references = select(func.min(ReferenceVersion.recorded_at)).scalar_subquery()
    row = (await session.execute(sqlalchemy.select(documents, references))).one()
    return min((t for t in row if t is not None), default=None)


async def state_at(
    session: AsyncSession, instant: dt.datetime
) -> tuple[Generation, dt.datetime | None]:
    """The registry's write generation now, and when it last changed at or before an instant
    (None: it was empty until then). Whenever both are the same, the registry as recorded at
    the instant is the same."""
    recorded = select(func.max(DocumentVersion.recorded_at)).where(
        col(DocumentVersion.recorded_at) <= instant
    )
    superseded = select(func.max(DocumentVersion.superseded_at)).where(
        col(DocumentVersion.superseded_at) <= instant
    )
    referenced = select(func.max(ReferenceVersion.recorded_at)).where(
        col(ReferenceVersion.recorded_at) <= instant
    )
    written = _generation().subquery()
    row = await session.execute(
        sqlalchemy.select(
            written.c[0],
            written.c[1],
            written.c[2],
            recorded.scalar_subquery(),
            superseded.scalar_subquery(),
            referenced.scalar_subquery(),
        )
    )
    count, newest, references, *changes = row.one()
    last = max((t for t in changes if t is not None), default=None)
    return (count, newest, references), last


async def audit_entries(
    session: AsyncSession, *, document_id: str | None, after: int | None, limit: int, size: int
) -> tuple[Sequence[AuditEntry], bool]:
    """Audit entries, newest first, optionally for one document, after a cursor: at most
    `limit`, and no more than fit in `size` characters of content (at least one); and whether
    more follow. An entry holds a document twice, before and after, and a document may be
    megabytes: the entries' sizes are read first, and only the entries that fit are read."""
    sizes = select(
        col(AuditEntry.id),
        func.coalesce(func.length(cast(col(AuditEntry.before), String)), 0)
        + func.length(cast(col(AuditEntry.after), String)),
    ).order_by(col(AuditEntry.id).desc())
    if document_id is not None:
        sizes = sizes.where(col(AuditEntry.document_id) == document_id)
    if after is not None:
        sizes = sizes.where(col(AuditEntry.id) < after)
    found = (await session.execute(sizes.limit(limit + 1))).all()
    wanted: list[int] = []
    total = 0
    for entry_id, entry_size in found[:limit]:
        total += entry_size
        if wanted and total > size:
            break
        wanted.append(entry_id)
    if not wanted:
        return [], False
    statement = (
        select(AuditEntry).where(col(AuditEntry.id).in_(wanted)).order_by(col(AuditEntry.id).desc())
    )
    return (await session.execute(statement)).scalars().all(), len(found) > len(wanted)


async def region_parents(session: AsyncSession) -> dict[str, str | None]:
    """Every region code with its parent."""
    rows = (await session.execute(select(Region.code, Region.parent))).all()
    return {row.code: row.parent for row in rows}


async def serialise_writers(session: AsyncSession) -> None:
    """Let one transaction at a time record versions (replicas loading files at start, changes
    through the API): versions are then recorded in the order they commit. Called first in a
    write's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})"))
    else:  # SQLite's write lock, taken by a write that changes nothing, waits its busy timeout
        await session.execute(text("UPDATE document_version SET version = version WHERE 0"))


async def settle_writes(session: AsyncSession, instant: dt.datetime) -> None:
    """Before reading the registry as recorded at a recent instant: wait for a write under way,
    which may have stamped its versions at or before the instant and not committed them yet, and
    hold the writers off until this read's transaction ends. Otherwise the same read, repeated
    once that write commits, would answer otherwise, and a past decision would not reproduce.
    Called first in the read's transaction. On PostgreSQL only: the local SQLite registry keeps
    the window between a stamp and its commit.

    An instant not yet past on this clock (a client's clock a little fast, `AHEAD_SECONDS` at
    most) is waited for first: a write stamped after it cannot change what it answers."""
    aware = instant if instant.tzinfo is not None else instant.replace(tzinfo=dt.UTC)
    ahead = (aware - dt.datetime.now(dt.UTC)).total_seconds()
    if ahead > 0:
        await asyncio.sleep(ahead)
    recent = aware > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=SETTLED_SECONDS)
    if recent and session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"SELECT pg_advisory_xact_lock_shared({_WRITE_LOCK})"))
