"""Tenant requests and responses."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["admin", "operator", "auditor"]


class TenantCreate(BaseModel):
    """A new tenant: a county, park or city system, or an auditor."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [{"name": "江阳区人社局", "role": "operator", "region": "510502"}]
        },
    )

    name: str = Field(min_length=2, max_length=100, description="租户名称，如 江阳区人社局")
    role: Role = Field(description="角色：admin 市级政策办、operator 区县或园区系统、auditor 审计")
    region: str = Field(
        pattern=r"^[0-9]{6}(-[A-Z]{2})?$", description="所辖区域代码（见 /v1/regions）"
    )


class TenantRead(BaseModel):
    """A tenant as listed; its keys are never shown again."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="租户标识")
    name: str = Field(description="租户名称")
    role: Role = Field(description="角色")
    region: str = Field(description="所辖区域代码")
    created_at: dt.datetime = Field(description="创建时间")
    disabled_at: dt.datetime | None = Field(default=None, description="停用时间")


class TenantCreated(TenantRead):
    """The new tenant with its API key, shown this once."""

    api_key: str = Field(description="API 密钥，仅此一次显示，请妥善保存")


class TenantList(BaseModel):
    """A page of tenants."""

    items: list[TenantRead]
    next_cursor: str | None = Field(default=None, description="下一页的游标；没有更多时为空")
