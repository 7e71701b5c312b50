"""Policy requests and responses (the registry serves them; the gateway relays them)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter
from subsidy_common.types import PolicyDate, Reason

from registry.documents.status import Status


class PolicySummary(BaseModel):
    """A document as listed."""

    id: str = Field(description="稳定的 ASCII 标识", examples=["luzhou-2015-33"])
    doc_no: str | None = Field(description="文号，照原文", examples=["泸市府发〔2015〕33号"])
    title: str = Field(description="标题")
    issuer: str = Field(description="发文机关")
    level: str = Field(description="发文层级")
    jurisdiction: list[str] = Field(description="适用地域（区划代码）")
    effective_from: dt.date = Field(description="施行日期")
    effective_to: dt.date | None = Field(description="有效期至；原文未载明时为空")
    repealed_date: dt.date | None = Field(default=None, description="废止（失效）日期")
    status: Status = Field(description="按所给日期（缺省为今天）判定的状态")
    version: int = Field(description="登记版本号")
    clause_count: int = Field(description="条款数；仅见于清理目录的文件为 0")
    catalogue_status: str | None = Field(default=None, description="清理目录中的结论")


class PolicyList(BaseModel):
    """A page of documents."""

    items: list[PolicySummary]
    next_cursor: str | None = None


class PolicyDetail(PolicySummary):
    """A document with its clauses, exclusions, supersession links and reading notes."""

    issued_date: dt.date | None = None
    repealed_by: str | None = None
    supersedes: list[dict[str, Any]] = Field(default_factory=list, description="被本文件取代的文件")
    exclusions: list[dict[str, Any]] = Field(default_factory=list, description="排除规则")
    clauses: list[dict[str, Any]] = Field(default_factory=list, description="条款")
    source: dict[str, Any] = Field(description="来源")
    notes: list[str] = Field(default_factory=list, description="解读说明")
    recorded_at: dt.datetime = Field(description="本版本登记时间")


class VersionRead(BaseModel):
    """One recorded version: who changed the document, when and why."""

    version: int
    recorded_at: dt.datetime
    superseded_at: dt.datetime | None
    author: str
    reason: str
    origin: str = Field(description="file：由政策文件载入；api：由管理接口写入")
    content_hash: str


class VersionList(BaseModel):
    """Every version of a document, oldest first."""

    items: list[VersionRead]
    next_cursor: str | None = None


class PolicyWrite(BaseModel):
    """A document to create or amend, and why. The reason is checked with the document
    (`WriteReason`), so that one answer lists the problems of both."""

    model_config = ConfigDict(extra="forbid")

    reason: JsonValue = Field(default=None, description="变更理由（2–2000 字）")
    document: dict[str, Any] = Field(
        description="完整的政策文件（格式见 policies/document.schema.json）"
    )


# What a write's reason must be: told beside its document's problems.
WriteReason: TypeAdapter[str] = TypeAdapter(Annotated[Reason, Field(min_length=2, max_length=2000)])


class RepealRequest(BaseModel):
    """Repeal a document from a date on."""

    model_config = ConfigDict(extra="forbid")

    date: PolicyDate = Field(description="废止日期（自该日起不再适用）")
    reason: Reason = Field(min_length=2, max_length=2000, description="废止理由")


class AuditRead(BaseModel):
    """One entry of the audit log."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    actor: str
    action: str
    document_id: str
    version: int
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any]


class AuditList(BaseModel):
    """A page of the audit log, newest first."""

    items: list[AuditRead]
    next_cursor: str | None = None


def summary_of(version: Any, document: Any, day: dt.date) -> PolicySummary:
    """The list form of a recorded version, with its status on `day`."""
    from registry.documents.status import status_on

    return PolicySummary(
        id=document.id,
        doc_no=document.doc_no,
        title=document.title,
        issuer=document.issuer,
        level=document.level,
        jurisdiction=list(document.jurisdiction),
        effective_from=document.effective_from,
        effective_to=document.effective_to,
        repealed_date=document.repealed_date,
        status=status_on(document, day),
        version=version.version,
        clause_count=len(document.clauses),
        catalogue_status=document.catalogue_status,
    )


# The fields of an amount (by kind) and of caps that are money; a percentage's rate and a tier's
# threshold (which may count people) are not.
_MONEY_FIELDS = {
    "fixed": ("value",),
    "per_unit": ("rate",),
    "range": ("min", "max"),
    "periodic": ("per_period",),
    "non_cash": ("value",),
}
_CAP_FIELDS = ("per_event", "per_applicant_year", "cumulative")


def _yuan(value: Any) -> Any:
    return f"{Decimal(str(value)):.2f}" if isinstance(value, str | int | float | Decimal) else value


def _amount_shown(amount: dict[str, Any]) -> dict[str, Any]:
    """An amount with its money written as the API writes money: two fraction digits."""
    shown = dict(amount)
    for name in _MONEY_FIELDS.get(amount.get("kind", ""), ()):
        if shown.get(name) is not None:
            shown[name] = _yuan(shown[name])
    if amount.get("kind") == "tiered":
        shown["tiers"] = [
            {**tier, "amount": _amount_shown(tier["amount"])} for tier in amount.get("tiers", ())
        ]
    return shown


def _clause_shown(document_id: str, clause: dict[str, Any]) -> dict[str, Any]:
    shown = {
        **clause,
        "id": f"{document_id}.{clause['id']}",
        "amount": _amount_shown(clause["amount"]),
    }
    if clause.get("caps"):
        caps = clause["caps"]
        shown["caps"] = {
            k: _yuan(v) if k in _CAP_FIELDS and v is not None else v for k, v in caps.items()
        }
    return shown


def detail_of(version: Any, document: Any, day: dt.date) -> PolicyDetail:
    """The full form of a recorded version; clause ids are `<document>.<clause>`, money in yuan
    with two fraction digits."""
    content = version.content
    clauses = [_clause_shown(document.id, clause) for clause in content["clauses"]]
    return PolicyDetail(
        **summary_of(version, document, day).model_dump(),
        issued_date=document.issued_date,
        repealed_by=document.repealed_by,
        supersedes=content["supersedes"],
        exclusions=content["exclusions"],
        clauses=clauses,
        source=content["source"],
        notes=content["notes"],
        recorded_at=version.recorded_at,
    )
