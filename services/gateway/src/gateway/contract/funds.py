"""The public shape of fund budgets (资金来源预算)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from subsidy_common.types import Reason

EXAMPLE_FUND: dict[str, Any] = {
    "fund": "市级专利资助资金",
    "budget": "5000000.00",
    "granted": "1203000.00",
    "remaining": "3797000.00",
    "updated_at": "2026-11-23T09:00:00+00:00",
    "updated_by": "admin [5a0c7a0e-2f65-4f4e-8d0a-3c1b9e6a7f10]",
    "reason": "2026 年度预算",
}


class Fund(BaseModel):
    """A fund with a budget: claims drawing on it pay no more than what is left."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_FUND]})

    fund: str = Field(description="资金来源，与条款的 funding_source 一致")
    budget: str = Field(description="预算（元）")
    granted: str = Field(description="已发放（元）")
    remaining: str = Field(description="余额（元）")
    updated_at: str = Field(description="设定时间")
    updated_by: str = Field(description="设定人")
    reason: str = Field(description="理由")


class FundList(BaseModel):
    """Every fund with a budget."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_FUND], "next_cursor": None}]}
    )

    items: list[Fund]
    next_cursor: str | None = None


class BudgetRequest(BaseModel):
    """Set a fund's budget."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"budget": "5000000.00", "reason": "2026 年度预算"}]},
    )

    budget: Decimal = Field(ge=0, max_digits=14, decimal_places=2, description="预算（元）")
    reason: Reason = Field(min_length=2, max_length=2000, description="理由")
