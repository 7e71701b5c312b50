"""The public shape of claims (the calculator keeps the ledger; the gateway documents it)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from subsidy_common.types import Reason

from gateway.contract.calculations import (
    EXAMPLE_REQUEST,
    EXAMPLE_RESPONSE,
    ApplicantIn,
    EventIn,
    EventResult,
)

ClaimStatus = Literal[
    "granted", "topped_up", "duplicate", "ineligible", "needs_assessment", "unknown",
    "needs_review", "budget_exhausted", "cap_exhausted", "revoked",
    "review_approved", "review_rejected",
]  # fmt: skip

EXAMPLE_CLAIM: dict[str, Any] = {
    "id": "0b8f9f7e-3c1a-4e0e-9a57-6f1f2b9c1d2e",
    "status": "granted",
    "amount": "3000.00",
    "entitlement": "3000.00",
    "previously_granted": "0.00",
    "withheld": "0.00",
    "duplicate_of": [],
    "review": None,
    "decision": EXAMPLE_RESPONSE["results"][0],
    "applicant": {k: EXAMPLE_REQUEST["applicant"][k] for k in ("id", "kind", "name", "region")},
    "matter": "patent.invention.granted",
    "subject": "ZL201510000001.1",
    "event_date": "2016-05-10",
    "registry_version": EXAMPLE_RESPONSE["registry_version"],
    "tenant": "5a0c7a0e-2f65-4f4e-8d0a-3c1b9e6a7f10",
    "created_at": "2026-11-23T10:00:00+00:00",
    "history": [{"status": "granted", "at": "2026-11-23T10:00:00+00:00"}],
}


class ClaimRequest(BaseModel):
    """A request to be paid for one event (申报). An event dated after today in China cannot be
    claimed yet (422 on `event.date`); a calculation weighs it beforehand."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"applicant": EXAMPLE_REQUEST["applicant"], "event": EXAMPLE_REQUEST["events"][0]}
            ]
        },
    )

    applicant: ApplicantIn
    event: EventIn


class Claim(BaseModel):
    """A decided claim: what it grants now, against what was granted before."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_CLAIM]})

    id: str = Field(description="申报标识")
    status: ClaimStatus = Field(
        description="granted 首次发放；topped_up 补差；duplicate 已发放完毕；"
        "needs_review 名称相近（或未填名称）的主体已就同一标的获发放，"
        "或标的为专利号、身份证号码、统一社会信用代码而已由其他主体获发放"
        "（含与本主体先前被暂缓申报所报名称相近者），待人工复核；"
        "budget_exhausted 资金预算已用尽；"
        "cap_exhausted 该条款的累计或年度上限已用尽；"
        "revoked 已追回；review_approved 复核通过（本申报不发放，再次申报按常规发放）；"
        "review_rejected 复核驳回；其余同计算结果"
    )
    amount: str = Field(description="本次发放金额（元）")
    entitlement: str = Field(description="最佳标准（元）")
    previously_granted: str = Field(description="此前已发放（元）")
    withheld: str = Field(
        default="0.00",
        description="因资金预算不足本次未发放、仍属应得的金额（元）：预算补足后再次申报即补发；"
        "预算未限制本次发放时为 0.00",
    )
    duplicate_of: list[str] = Field(description="已发放的先前申报")
    review: dict[str, Any] | None = Field(
        default=None,
        description="待复核的原因与相近主体：本租户的逐一列出，其他租户的只给数量（in_other_tenants）",
    )
    decision: EventResult = Field(description="该事件的计算结果")
    applicant: dict[str, Any] = Field(description="申报主体（个人身份证号已脱敏）")
    matter: str
    subject: str
    event_date: dt.date
    registry_version: str = Field(description="决定所用的政策库版本")
    tenant: str = Field(description="提交申报的租户")
    created_at: dt.datetime
    history: list[dict[str, Any]] = Field(description="状态变化")


class ClaimList(BaseModel):
    """A page of claims."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_CLAIM], "next_cursor": None}]}
    )

    items: list[Claim]
    next_cursor: str | None = None


class ReviewRequest(BaseModel):
    """Decide a claim held for review (人工复核)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "approve", "reason": "经核实为不同企业"}]},
    )

    decision: Literal["approve", "reject"] = Field(description="approve 通过；reject 驳回")
    reason: Reason = Field(min_length=2, max_length=2000, description="复核意见")


class RevokeRequest(BaseModel):
    """Take a grant back (追回)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "重复申报，追回"}]}
    )

    reason: Reason = Field(min_length=2, max_length=2000, description="追回理由")
