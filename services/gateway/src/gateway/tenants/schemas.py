"""Tenant requests and responses."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

Role = Literal["admin", "operator", "auditor"]

REGION_PATTERN = r"^[0-9]{6}(-[A-Z]{2})?$"

EXAMPLE_TENANT: dict[str, Any] = {
    "id": "5a0c7a0e-2f65-4f4e-8d0a-3c1b9e6a7f10",
    "name": "江阳区人社局",
    "role": "operator",
    "region": "510502",
    "created_at": "2026-11-23T10:00:00+00:00",
    "disabled_at": None,
}
EXAMPLE_KEY: dict[str, Any] = {
    "id": "9d4c1f0a-6b2e-4c8a-9f3e-2a7b5c1d0e42",
    "tenant_id": EXAMPLE_TENANT["id"],
    "prefix": "sk_Xa81Qe",
    "created_at": "2026-11-23T10:00:00+00:00",
    "revoked_at": None,
}
EXAMPLE_API_KEY = "sk_Xa81QeJ3m0vT9bYk2LwZr7Hq5Nd4Gc6Fs1Pu8Ei0Ao7"


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
    region: str = Field(pattern=REGION_PATTERN, description="所辖区域代码（见 /v1/regions）")

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        # A name is shown in listings and logs: a line break or a direction mark in it would
        # make it read as something else there.
        for place, char in enumerate(name, 1):
            if unicodedata.category(char)[0] == "C":
                raise ValueError(
                    f"must not contain control or format characters (U+{ord(char):04X} at"
                    f" character {place})"
                )
        return name


class TenantRead(BaseModel):
    """A tenant as listed; its keys are never shown again."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [EXAMPLE_TENANT]}
    )

    id: str = Field(description="租户标识")
    name: str = Field(description="租户名称")
    role: Role = Field(description="角色")
    region: str = Field(description="所辖区域代码")
    created_at: dt.datetime = Field(description="创建时间")
    disabled_at: dt.datetime | None = Field(default=None, description="停用时间")


class TenantCreated(TenantRead):
    """The new tenant with its API key, shown this once."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**EXAMPLE_TENANT, "api_key": EXAMPLE_API_KEY}]}
    )

    api_key: str = Field(description="API 密钥，仅此一次显示，请妥善保存")


class TenantList(BaseModel):
    """A page of tenants."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": "5a0c7a0e-2f65-4f4e-8d0a-3c1b9e6a7f10",
                            "name": "江阳区人社局",
                            "role": "operator",
                            "region": "510502",
                            "created_at": "2026-11-23T09:00:00Z",
                            "disabled_at": None,
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[TenantRead]
    next_cursor: str | None = Field(default=None, description="下一页的游标；没有更多时为空")


class KeyIssue(BaseModel):
    """How to issue a new key: alone (for a handover) or replacing the others (rotation)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"revoke_others": True}]}
    )

    revoke_others: StrictBool = Field(
        default=False,
        description="同时吊销该租户的其他全部有效密钥（轮换）；缺省为否，新旧密钥并存",
    )


class KeyRead(BaseModel):
    """An API key as listed: its prefix and dates, never the key itself."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLE_KEY]})

    id: str = Field(description="密钥标识")
    tenant_id: str = Field(description="所属租户")
    prefix: str = Field(description="密钥前几位，用于辨认，不能用于调用")
    created_at: dt.datetime = Field(description="签发时间")
    revoked_at: dt.datetime | None = Field(default=None, description="吊销时间；有效时为空")


class KeyIssued(KeyRead):
    """The new key in clear, shown this once, and the keys it replaced."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **EXAMPLE_KEY,
                    "api_key": EXAMPLE_API_KEY,
                    "revoked_key_ids": ["0c3e2b7d-1f4a-4e9b-8c6d-5a2f1e0b9c87"],
                }
            ]
        }
    )

    api_key: str = Field(description="API 密钥，仅此一次显示，请妥善保存")
    revoked_key_ids: list[str] = Field(
        default_factory=list, description="本次轮换一并吊销的密钥标识"
    )


class KeyList(BaseModel):
    """A page of a tenant's keys, revoked ones included."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_KEY], "next_cursor": None}]}
    )

    items: list[KeyRead]
    next_cursor: str | None = Field(default=None, description="下一页的游标；没有更多时为空")


ChangeAction = Literal["create", "issue_key", "revoke_key", "disable", "bootstrap"]
EXAMPLE_CHANGE: dict[str, Any] = {
    "id": 7,
    "at": "2026-11-23T10:05:00+00:00",
    "actor": "admin [0b7e6c1a-3d2f-4a5b-9c8d-7e6f5a4b3c2d]",
    "action": "issue_key",
    "tenant_id": EXAMPLE_TENANT["id"],
    "key_id": EXAMPLE_KEY["id"],
    "revoked_key_ids": ["0c3e2b7d-1f4a-4e9b-8c6d-5a2f1e0b9c87"],
}


class TenantChangeRead(BaseModel):
    """One change to a tenant or its keys, as the record keeps it."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [EXAMPLE_CHANGE]}
    )

    id: int = Field(description="记录编号")
    at: dt.datetime = Field(description="时间")
    actor: str = Field(
        description="操作人：租户名称与标识；命令行为 `gateway-tenants`，"
        "启动时的 SUBSIDY_ADMIN_KEY 为 `SUBSIDY_ADMIN_KEY`"
    )
    action: ChangeAction = Field(
        description="create 创建租户（含首个密钥）、issue_key 签发或轮换密钥、"
        "revoke_key 吊销密钥、disable 停用租户、bootstrap 以 SUBSIDY_ADMIN_KEY 启动设定管理员密钥"
    )
    tenant_id: str = Field(description="被变更的租户")
    key_id: str | None = Field(description="签发或吊销的密钥；停用租户时为空")
    revoked_key_ids: list[str] = Field(description="本次变更一并吊销的其他密钥")


class TenantChangeList(BaseModel):
    """A page of changes to tenants and keys, newest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_CHANGE], "next_cursor": None}]}
    )

    items: list[TenantChangeRead]
    next_cursor: str | None = Field(default=None, description="下一页的游标；没有更多时为空")
