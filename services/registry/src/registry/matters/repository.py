"""Queries on matters."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from registry.models import Matter


async def list_matters(session: AsyncSession) -> Sequence[Matter]:
    """All matters in catalogue order."""
    result = await session.execute(select(Matter).order_by(Matter.position))  # type: ignore[arg-type]
    return result.scalars().all()
