"""Loading the reference files (regions, matters) into the registry's database."""

from __future__ import annotations

import logging

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import Matter, Region
from registry.policy_files.loader import PolicySet

log = logging.getLogger(__name__)


async def load_reference_data(session: AsyncSession, policy_set: PolicySet) -> None:
    """Make the region and matter tables equal to the files (the files are the truth)."""
    regions = policy_set.regions.regions
    known = {region.code for region in regions}
    for position, region in enumerate(regions):
        await session.merge(
            Region(
                code=region.code,
                name=region.name,
                parent=region.parent,
                level=region.level,
                position=position,
            )
        )
    await session.flush()
    await session.execute(delete(Region).where(Region.code.not_in(known)))  # type: ignore[attr-defined]
    keys = {matter.key for matter in policy_set.matters.matters}
    for position, matter in enumerate(policy_set.matters.matters):
        await session.merge(
            Matter(
                key=matter.key,
                name=matter.name,
                beneficiaries=list(matter.beneficiaries),
                attributes={
                    name: attribute.model_dump(mode="json", exclude_none=True)
                    for name, attribute in matter.attributes.items()
                },
                strategy=matter.strategy.model_dump(mode="json", exclude_none=True)
                if matter.strategy
                else None,
                subject=matter.subject,
                position=position,
            )
        )
    await session.execute(delete(Matter).where(Matter.key.not_in(keys)))  # type: ignore[attr-defined]
    log.info("reference data loaded", extra={"regions": len(regions), "matters": len(keys)})
