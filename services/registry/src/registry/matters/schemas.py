"""What the matters API returns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class MatterRead(BaseModel):
    """A kind of thing rewarded and the attributes its clauses read."""

    model_config = ConfigDict(from_attributes=True)

    key: str = Field(description="事项键", examples=["patent.invention.granted"])
    name: str = Field(description="事项名称", examples=["发明专利授权"])
    beneficiaries: list[str] = Field(description="可受益的主体类型")
    attributes: dict[str, dict[str, Any]] = Field(description="条件与金额读取的属性")
    strategy: dict[str, Any] | None = Field(default=None, description="多文件重叠时的处理方式")
    subject: str | None = Field(default=None, description="标的")


class MatterList(BaseModel):
    """Every matter."""

    items: list[MatterRead]
    next_cursor: str | None = None
