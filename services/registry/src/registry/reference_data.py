"""Loading the reference files (regions, matters) into the registry's database, and what
they were at any instant since."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from registry.matters import repository as matter_repository
from registry.models import DocumentVersion, Matter, ReferenceVersion, Region
from registry.policy_files.loader import PolicySet
from registry.regions import repository as region_repository

log = logging.getLogger(__name__)


def reference_content(regions: Sequence[Region], matters: Sequence[Matter]) -> dict[str, Any]:
    """Regions and matters as a snapshot carries them."""
    return {
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
    }


async def current_reference(session: AsyncSession) -> dict[str, Any]:
    """The regions and matters as they are now."""
    return reference_content(
        await region_repository.list_regions(session), await matter_repository.list_matters(session)
    )


async def reference_as_of(session: AsyncSession, instant: dt.datetime) -> dict[str, Any]:
    """The regions and matters as recorded at an instant: the last version recorded by then (the
    first, for an instant before any; the tables, in a registry that never recorded one)."""
    recorded = await session.scalar(
        select(ReferenceVersion)
        .where(col(ReferenceVersion.recorded_at) <= instant)
        .order_by(col(ReferenceVersion.recorded_at).desc(), col(ReferenceVersion.id).desc())
        .limit(1)
    )
    if recorded is None:
        recorded = await session.scalar(
            select(ReferenceVersion).order_by(col(ReferenceVersion.id)).limit(1)
        )
    return recorded.content if recorded is not None else await current_reference(session)


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _record(session: AsyncSession, content: dict[str, Any], at: dt.datetime) -> None:
    """Keep the content as a new version unless it is the last one recorded."""
    last = await session.scalar(
        select(ReferenceVersion.digest).order_by(col(ReferenceVersion.id).desc()).limit(1)
    )
    digest = _digest(content)
    if digest != last:
        session.add(ReferenceVersion(recorded_at=at, digest=digest, content=content))
        await session.flush()


async def load_reference_data(
    session: AsyncSession, policy_set: PolicySet, now: dt.datetime
) -> None:
    """Make the region and matter tables equal to the files (the files are the truth), and
    record them as a new version when they changed.

    The stored rows are read first, one query per table, and compared in memory: only what
    differs from the files is written, so an unchanged set of files costs two queries. A
    registry that kept no versions yet records what its tables held first, as of its first
    recorded document, so that instants before this change still see what they saw.
    """
    if await session.scalar(select(func.count()).select_from(ReferenceVersion)) == 0:
        before = await current_reference(session)
        if before["regions"] or before["matters"]:
            first = await session.scalar(select(func.min(DocumentVersion.recorded_at)))
            await _record(session, before, first or now)
    regions = policy_set.regions.regions
    stored_regions = {r.code: r for r in (await session.execute(select(Region))).scalars()}
    for position, region in enumerate(regions):
        values: dict[str, Any] = {
            "name": region.name,
            "parent": region.parent,
            "level": region.level,
            "position": position,
        }
        stored = stored_regions.get(region.code)
        if stored is None:
            session.add(Region(code=region.code, **values))
        else:
            _update(stored, values)
    await session.flush()
    known = {region.code for region in regions}
    if stored_regions.keys() - known:
        await session.execute(delete(Region).where(Region.code.not_in(known)))  # type: ignore[attr-defined]
    matters = policy_set.matters.matters
    stored_matters = {m.key: m for m in (await session.execute(select(Matter))).scalars()}
    for position, matter in enumerate(matters):
        values = {
            "name": matter.name,
            "beneficiaries": list(matter.beneficiaries),
            "attributes": {
                name: attribute.model_dump(mode="json", exclude_none=True)
                for name, attribute in matter.attributes.items()
            },
            "strategy": matter.strategy.model_dump(mode="json", exclude_none=True)
            if matter.strategy
            else None,
            "subject": matter.subject,
            "position": position,
        }
        stored_matter = stored_matters.get(matter.key)
        if stored_matter is None:
            session.add(Matter(key=matter.key, **values))
        else:
            _update(stored_matter, values)
    keys = {matter.key for matter in matters}
    if stored_matters.keys() - keys:
        await session.execute(delete(Matter).where(Matter.key.not_in(keys)))  # type: ignore[attr-defined]
    await session.flush()
    await _record(session, await current_reference(session), now)
    log.info("reference data loaded", extra={"regions": len(regions), "matters": len(keys)})


def _update(row: Region | Matter, values: dict[str, Any]) -> None:
    """Set the fields of a stored row that differ from the files (a JSON value is replaced)."""
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
