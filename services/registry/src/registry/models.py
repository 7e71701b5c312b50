"""The registry's tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel
from subsidy_common.naming import NAMING_CONVENTION

SQLModel.metadata.naming_convention = NAMING_CONVENTION


class Region(SQLModel, table=True):
    """An administrative division (GB/T 2260) or a park, with its parent."""

    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=60)
    parent: str | None = Field(default=None, foreign_key="region.code", max_length=16)
    level: str = Field(max_length=16)
    position: int = Field(default=0, description="order in the reference file")


class Matter(SQLModel, table=True):
    """A kind of thing rewarded, with the attributes its clauses read."""

    key: str = Field(primary_key=True, max_length=80)
    name: str = Field(max_length=80)
    beneficiaries: list[str] = Field(sa_column=Column(JSON, nullable=False))
    attributes: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    strategy: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    subject: str | None = Field(default=None, max_length=200)
    position: int = Field(default=0)


metadata = SQLModel.metadata
