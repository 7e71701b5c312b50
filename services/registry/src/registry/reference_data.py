"""Loading the reference files (regions, matters) into the registry's database."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import Matter, Region
from registry.policy_files.loader import PolicySet

log = logging.getLogger(__name__)


async def load_reference_data(session: AsyncSession, policy_set: PolicySet) -> None:
    """Make the region and matter tables equal to the files (the files are the truth).

    The stored rows are read first, one query per table, and compared in memory: only what
    differs from the files is written, so an unchanged set of files costs two queries.
    """
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
    log.info("reference data loaded", extra={"regions": len(regions), "matters": len(keys)})


def _update(row: Region | Matter, values: dict[str, Any]) -> None:
    """Set the fields of a stored row that differ from the files (a JSON value is replaced)."""
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
