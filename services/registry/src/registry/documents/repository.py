"""Queries on document versions and the audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import or_, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from registry.models import AuditEntry, DocumentVersion, Region


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


async def current_document_ids(session: AsyncSession) -> set[str]:
    """The ids of every document in the registry now."""
    statement = select(DocumentVersion.document_id).where(_as_recorded_at(None))
    return set((await session.execute(statement)).scalars().all())


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


async def versions(session: AsyncSession, document_id: str) -> Sequence[DocumentVersion]:
    """Every recorded version of a document, oldest first."""
    statement = (
        select(DocumentVersion)
        .where(col(DocumentVersion.document_id) == document_id)
        .order_by(col(DocumentVersion.version))
    )
    return (await session.execute(statement)).scalars().all()


async def last_file_version(session: AsyncSession, document_id: str) -> DocumentVersion | None:
    """The latest version loaded from a policy file."""
    statement = (
        select(DocumentVersion)
        .where(
            col(DocumentVersion.document_id) == document_id, col(DocumentVersion.origin) == "file"
        )
        .order_by(col(DocumentVersion.version).desc())
        .limit(1)
    )
    return (await session.execute(statement)).scalar_one_or_none()


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


async def latest_change(session: AsyncSession) -> int:
    """An id that grows with every recorded version: the registry's write generation."""
    statement = select(DocumentVersion.id).order_by(col(DocumentVersion.id).desc()).limit(1)
    return (await session.execute(statement)).scalar_one_or_none() or 0


async def audit_entries(
    session: AsyncSession, *, document_id: str | None, after: int | None, limit: int
) -> Sequence[AuditEntry]:
    """Audit entries, newest first, optionally for one document, after a cursor."""
    statement = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if document_id is not None:
        statement = statement.where(col(AuditEntry.document_id) == document_id)
    if after is not None:
        statement = statement.where(col(AuditEntry.id) < after)
    return (await session.execute(statement)).scalars().all()


async def region_parents(session: AsyncSession) -> dict[str, str | None]:
    """Every region code with its parent."""
    rows = (await session.execute(select(Region.code, Region.parent))).all()
    return {row.code: row.parent for row in rows}


async def serialise_writers(session: AsyncSession) -> None:
    """Let one transaction at a time record versions (replicas loading files at start)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('registry:write'))"))
