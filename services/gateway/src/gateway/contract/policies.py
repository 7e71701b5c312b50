"""The public shape of policies (the registry serves them; the gateway documents them)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from subsidy_common.types import PolicyDate, Reason

Status = Literal["in_force", "not_yet_in_force", "expired", "repealed"]

EXAMPLE_SUMMARY: dict[str, Any] = {
    "id": "luzhou-2015-33",
    "doc_no": "泸市府发〔2015〕33号",
    "title": "泸州市人民政府关于全面推进大众创业万众创新的实施意见",
    "issuer": "泸州市人民政府",
    "level": "city",
    "jurisdiction": ["510500"],
    "effective_from": "2015-07-31",
    "effective_to": None,
    "repealed_date": None,
    "status": "in_force",
    "version": 1,
    "clause_count": 52,
    "catalogue_status": None,
}


class PolicySummary(BaseModel):
    """A normative document (政策文件) as listed."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_SUMMARY]})

    id: str = Field(description="稳定的 ASCII 标识")
    doc_no: str | None = Field(description="文号，照原文")
    title: str = Field(description="标题")
    issuer: str = Field(description="发文机关")
    level: str = Field(description="发文层级：national、provincial、city、county、park")
    jurisdiction: list[str] = Field(description="适用地域（区划代码）")
    effective_from: dt.date = Field(description="施行日期")
    effective_to: dt.date | None = Field(description="有效期至；原文未载明时为空")
    repealed_date: dt.date | None = Field(default=None, description="废止日期（自该日起不再适用）")
    status: Status = Field(description="按 in_force_on（缺省为今天）判定的状态")
    version: int = Field(description="登记版本号")
    clause_count: int = Field(description="条款数；仅见于清理目录的文件为 0")
    catalogue_status: str | None = Field(default=None, description="清理目录结论")


class PolicyList(BaseModel):
    """A page of documents."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_SUMMARY], "next_cursor": None}]}
    )

    items: list[PolicySummary]
    next_cursor: str | None = Field(default=None, description="下一页的游标")


class PolicyDetail(PolicySummary):
    """A document with its clauses (条款), each quoting its source sentence."""

    issued_date: dt.date | None = Field(default=None, description="印发日期")
    repealed_by: str | None = Field(default=None, description="宣布废止的文件")
    supersedes: list[dict[str, Any]] = Field(default_factory=list, description="被本文件取代的文件")
    exclusions: list[dict[str, Any]] = Field(default_factory=list, description="排除规则")
    clauses: list[dict[str, Any]] = Field(
        default_factory=list,
        description="条款：id、ref、matter、beneficiaries、condition、amount、caps、funding_source、quote",
    )
    source: dict[str, Any] = Field(description="来源")
    notes: list[str] = Field(default_factory=list, description="解读说明")
    recorded_at: dt.datetime = Field(description="本版本登记时间")


class VersionRead(BaseModel):
    """One recorded version of a document."""

    version: int = Field(description="版本号")
    recorded_at: dt.datetime = Field(description="登记时间")
    superseded_at: dt.datetime | None = Field(description="被新版本取代的时间")
    author: str = Field(description="变更人")
    reason: str = Field(description="变更理由")
    origin: str = Field(description="file：由政策文件载入；api：由管理接口写入")
    content_hash: str = Field(description="内容摘要")


class VersionList(BaseModel):
    """Every version of a document, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "version": 1,
                            "recorded_at": "2026-11-23T09:00:00+00:00",
                            "superseded_at": None,
                            "author": "policy-files",
                            "reason": "loaded from policies/documents/luzhou-2015-33.yaml",
                            "origin": "file",
                            "content_hash": "9b1c…",
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[VersionRead]
    next_cursor: str | None = None


class PolicyWrite(BaseModel):
    """A document to create or amend, and why."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reason": "依据新印发文件登记",
                    "document": {
                        "id": "example-2024-1",
                        "doc_no": "示例〔2024〕1号",
                        "title": "示例文件",
                        "issuer": "泸州市人民政府",
                        "level": "city",
                        "jurisdiction": ["510500"],
                        "effective_from": "2024-01-01",
                        "source": {"title": "泸州市人民政府公报"},
                        "clauses": [],
                    },
                }
            ]
        },
    )

    reason: Reason = Field(min_length=2, max_length=2000, description="变更理由")
    document: dict[str, Any] = Field(
        description="完整的政策文件（格式见 policies/document.schema.json）"
    )


class RepealRequest(BaseModel):
    """Repeal a document from a date on."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"date": "2024-01-01", "reason": "已被新文件替代"}]},
    )

    date: PolicyDate = Field(description="废止日期（YYYY-MM-DD，自该日起不再适用）")
    reason: Reason = Field(min_length=2, max_length=2000, description="废止理由")


class AuditRead(BaseModel):
    """One entry of the audit log."""

    id: int
    at: dt.datetime = Field(description="时间")
    actor: str = Field(description="操作人")
    action: str = Field(description="load、create、amend、repeal")
    document_id: str = Field(description="文件标识")
    version: int = Field(description="产生的版本号")
    reason: str = Field(description="理由")
    before: dict[str, Any] | None = Field(description="变更前内容")
    after: dict[str, Any] = Field(description="变更后内容")


class AuditList(BaseModel):
    """A page of the audit log, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 42,
                            "at": "2026-11-23T10:00:00+00:00",
                            "actor": "admin [5a0c7a0e-2f65-4f4e-8d0a-3c1b9e6a7f10]",
                            "action": "repeal",
                            "document_id": "lzsff-2019-7",
                            "version": 2,
                            "reason": "已被新文件替代",
                            "before": {"repealed_date": None},
                            "after": {"repealed_date": "2024-01-01"},
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[AuditRead]
    next_cursor: str | None = None
