"""What the regions API returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RegionRead(BaseModel):
    """One region: a province, city, county or park."""

    model_config = ConfigDict(from_attributes=True)

    code: str = Field(
        description="区划代码（GB/T 2260）；园区为 城市代码-两位字母", examples=["510502"]
    )
    name: str = Field(description="名称", examples=["江阳区"])
    parent: str | None = Field(description="上级区划代码", examples=["510500"])
    level: Literal["province", "city", "county", "park"] = Field(description="层级")


class RegionList(BaseModel):
    """Every region the registry knows, parents before children."""

    items: list[RegionRead]
    next_cursor: str | None = None
