"""The public shape of calculations (the calculator computes them; the gateway documents them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
)
from subsidy_common.types import Count, HalfWidth, PolicyDate, RecordedInstant

AttributeValue = str | int | float | bool | None | list[StrictStr | StrictInt | StrictFloat]
Attributes = dict[
    Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")], AttributeValue
]

EXAMPLE_REQUEST: dict[str, Any] = {
    "applicant": {
        "id": "91510500MA62B8XY4F",
        "kind": "enterprise",
        "name": "泸州示例科技有限公司",
        "region": "510502",
        "attributes": {},
    },
    "events": [
        {
            "matter": "patent.invention.granted",
            "date": "2016-05-10",
            "subject": "ZL201510000001.1",
            "quantity": 1,
            "attributes": {},
        }
    ],
    "registry_as_of": None,
}

EXAMPLE_RESPONSE: dict[str, Any] = {
    "registry_version": "3f5c0d2a9b7e4c1d8a6f0e2b4c6d8e0f",
    "total": "3000.00",
    "results": [
        {
            "event_index": 0,
            "matter": "patent.invention.granted",
            "subject": "ZL201510000001.1",
            "status": "eligible",
            "amount": "3000.00",
            "strategy": "newest_then_highest",
            "granted": {
                "policy_id": "luzhou-2015-33",
                "doc_no": "泸市府发〔2015〕33号",
                "clause_id": "luzhou-2015-33.patent-invention",
                "ref": "（二十）",
                "basis": "1 件 × 3000.00 元",
                "quote": "对新授权的发明专利、实用新型专利、外观设计专利"
                "每件分别资助 3000 元、800 元、400 元",
            },
            "entitlement": "3000.00",
            "previously_granted": "0.00",
            "considered": [
                {
                    "policy_id": "luzhou-2015-33",
                    "doc_no": "泸市府发〔2015〕33号",
                    "clause_id": "luzhou-2015-33.patent-invention",
                    "ref": "（二十）",
                    "amount": "3000.00",
                    "outcome": "granted",
                    "reason": "唯一符合条件的条款",
                }
            ],
            "missing": [],
            "range": None,
            "schedule": [],
        }
    ],
}


class ApplicantIn(BaseModel):
    """The applicant (申请主体)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(
        min_length=1,
        max_length=40,
        description="统一社会信用代码（企业、机构）或居民身份证号码（个人），校验位会被检查",
    )
    kind: Literal["enterprise", "individual", "institution"] = Field(description="主体类型")
    name: str = Field(default="", max_length=200, description="名称")
    region: HalfWidth = Field(
        pattern=r"^[0-9]{6}(-[A-Z]{2})?$", description="所在区域代码（见 /v1/regions）"
    )
    attributes: Attributes = Field(default_factory=dict, max_length=100, description="主体属性")


class EventIn(BaseModel):
    """One event (事件) that may be rewarded."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    matter: str = Field(max_length=80, description="事项键（见 /v1/matters）")
    date: PolicyDate = Field(description="事件日期（YYYY-MM-DD）；按该日有效的政策判定")
    subject: str = Field(
        min_length=1,
        max_length=200,
        description="标的，如 专利号；不重复的单位是（主体、事项、标的）",
    )
    quantity: Count = Field(default=1, ge=1, le=1_000_000, description="数量（整数）")
    attributes: Attributes = Field(
        default_factory=dict,
        max_length=100,
        description="事件属性；assessed_amount 为区间金额的评定值",
    )


class CalculationRequest(BaseModel):
    """An applicant and its events."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    applicant: ApplicantIn
    events: list[EventIn] = Field(min_length=1, max_length=1000, description="事件")
    registry_as_of: RecordedInstant | None = Field(
        default=None,
        description="按该时刻登记的政策计算，以复现过去的结果；缺省为当前。不得晚于当前时刻（422）",
    )


class Money(BaseModel):
    """A range of money (区间)."""

    min: str = Field(description="下限（元）")
    max: str = Field(description="上限（元）")


class Considered(BaseModel):
    """A clause weighed for an event."""

    policy_id: str
    doc_no: str | None
    clause_id: str
    ref: str
    amount: str | None = Field(description="该条款的金额（元）")
    outcome: Literal[
        "granted",
        "superseded",
        "lower_standard",
        "not_cumulative",
        "not_in_force",
        "out_of_jurisdiction",
        "beneficiary_mismatch",
        "condition_not_met",
        "excluded",
        "unknown",
        "needs_assessment",
        "unspecified",
        "non_cash",
    ] = Field(description="该条款的结论")
    reason: str = Field(description="原因")


class EventResult(BaseModel):
    """The decision for one event."""

    event_index: int
    matter: str
    subject: str
    status: Literal["eligible", "ineligible", "needs_assessment", "unknown"]
    amount: str = Field(description="应付金额（元）：最佳标准减去已发放")
    strategy: Literal["newest_then_highest", "priority", "cumulative"] = Field(
        description="决定的策略：时间从新、标准从高（newest_then_highest）、优先（priority）、累加（cumulative）"
    )
    granted: dict[str, Any] | None = Field(description="适用的条款与计算依据")
    entitlement: str = Field(description="最佳标准（元）")
    previously_granted: str = Field(description="台账中已发放（元）")
    considered: list[Considered]
    missing: list[str] = Field(description="条件所需而未提供的属性")
    range: Money | None = Field(description="需评定时的金额区间")
    schedule: list[dict[str, Any]] = Field(description="分期发放计划")


class CalculationResponse(BaseModel):
    """What each event is entitled to, and why."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_RESPONSE]})

    registry_version: str = Field(description="计算所用的政策库版本")
    total: str = Field(description="合计（元）")
    results: list[EventResult]


class BatchRequest(BaseModel):
    """Many calculations at once (or send NDJSON, one request per line)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"cases": [EXAMPLE_REQUEST]}]}
    )

    # Any value is taken as a case here: one that is not a calculation request is answered with
    # a problem in its place, and the others go on, as a bad NDJSON line is.
    cases: Annotated[
        list[JsonValue],
        WithJsonSchema(
            {
                "type": "array",
                "items": {"type": "object"},  # a CalculationRequest (`main.py` refers to it)
                "minItems": 1,
                "maxItems": 1000,
            }
        ),
    ] = Field(
        min_length=1,
        max_length=1000,
        description="计算请求，至多 1000 个；更多时请用 NDJSON 流式提交（每行一个，不限条数）",
    )


class BatchResponse(BaseModel):
    """One calculation response (or problem) per case, in order."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [{**EXAMPLE_RESPONSE, "case_index": 0}]}]}
    )

    items: list[dict[str, Any]]
