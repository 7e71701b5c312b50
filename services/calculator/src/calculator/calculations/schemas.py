"""Calculation requests, validated once at the edge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
)
from subsidy_common.types import Count, HalfWidth, PolicyDate, RecordedInstant

# A subject's length, as sent and once in its normal form: what the ledger keeps of it.
SUBJECT_LENGTH = 200

Scalar = str | int | float | bool | None
AttributeValue = Scalar | list[StrictStr | StrictInt | StrictFloat]
Attributes = dict[
    Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")], AttributeValue
]


class ApplicantIn(BaseModel):
    """The applicant (申请主体)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=40, description="统一社会信用代码或居民身份证号码")
    kind: Literal["enterprise", "individual", "institution"] = Field(description="主体类型")
    name: str = Field(default="", max_length=200, description="名称")
    region: HalfWidth = Field(pattern=r"^[0-9]{6}(-[A-Z]{2})?$", description="所在区域代码")
    attributes: Attributes = Field(default_factory=dict, max_length=100, description="主体属性")


class EventIn(BaseModel):
    """One event (事件) that may be rewarded."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    matter: str = Field(max_length=80, description="事项键（见 /v1/matters）")
    date: PolicyDate = Field(description="事件日期；按该日有效的政策判定")
    subject: str = Field(min_length=1, max_length=SUBJECT_LENGTH, description="标的，如 专利号")
    quantity: Count = Field(default=1, ge=1, le=1_000_000, description="数量")
    attributes: Attributes = Field(default_factory=dict, max_length=100, description="事件属性")


class CalculationIn(BaseModel):
    """An applicant and its events."""

    model_config = ConfigDict(extra="forbid")

    applicant: ApplicantIn
    events: list[EventIn] = Field(min_length=1, max_length=1000)
    registry_as_of: RecordedInstant | None = Field(
        default=None, description="按该时刻登记的政策计算"
    )


class BatchIn(BaseModel):
    """Many calculations in one request."""

    model_config = ConfigDict(extra="forbid")

    cases: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
