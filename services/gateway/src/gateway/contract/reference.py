"""The public shape of reference data (the registry serves it; the gateway documents it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Region(BaseModel):
    """A province, city, county (区县) or park (园区)."""

    code: str = Field(
        description="区划代码（GB/T 2260）；园区为 城市代码-两位字母", examples=["510502"]
    )
    name: str = Field(description="名称", examples=["江阳区"])
    parent: str | None = Field(description="上级区划代码", examples=["510500"])
    level: Literal["province", "city", "county", "park"] = Field(description="层级")


class RegionList(BaseModel):
    """Every region, parents before children."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
                        {"code": "510502", "name": "江阳区", "parent": "510500", "level": "county"},
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[Region]
    next_cursor: str | None = Field(default=None, description="下一页的游标；没有更多时为空")


class Matter(BaseModel):
    """A kind of thing rewarded (事项)."""

    key: str = Field(description="事项键", examples=["patent.invention.granted"])
    name: str = Field(description="事项名称", examples=["新授权发明专利"])
    beneficiaries: list[Literal["enterprise", "individual", "institution"]] = Field(
        description="可受益的主体类型"
    )
    attributes: dict[str, dict[str, Any]] = Field(description="条件与金额读取的属性")
    strategy: dict[str, Any] | None = Field(
        default=None, description="多个文件奖励同一事项时的处理方式"
    )
    subject: str | None = Field(default=None, description="标的，如 专利号")


class MatterList(BaseModel):
    """Every matter."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "key": "enterprise.innovative.recognized",
                            "name": "新获创新型企业认定",
                            "beneficiaries": ["enterprise"],
                            "attributes": {
                                "level": {
                                    "type": "enum",
                                    "description": "级别",
                                    "values": ["national", "provincial"],
                                }
                            },
                            "strategy": None,
                            "subject": None,
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[Matter]
    next_cursor: str | None = None
