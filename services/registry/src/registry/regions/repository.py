"""Queries on regions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from registry.models import Region


async def list_regions(session: AsyncSession) -> Sequence[Region]:
    """All regions in reference-file order."""
    result = await session.execute(select(Region).order_by(Region.position))  # type: ignore[arg-type]
    return result.scalars().all()
