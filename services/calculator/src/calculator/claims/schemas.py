"""Claim requests."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from subsidy_common.types import Reason

from calculator.calculations.schemas import ApplicantIn, EventIn


class ClaimIn(BaseModel):
    """A request to be paid for one event."""

    model_config = ConfigDict(extra="forbid")

    applicant: ApplicantIn
    event: EventIn


class RevokeIn(BaseModel):
    """Take a grant back (追回)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(min_length=2, max_length=2000, description="追回理由")


class ReviewIn(BaseModel):
    """Decide a claim held for review (人工复核)."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"] = Field(description="approve 通过；reject 驳回")
    reason: Reason = Field(min_length=2, max_length=2000, description="复核意见")


class BudgetIn(BaseModel):
    """A fund's budget (资金预算), and why it is set."""

    model_config = ConfigDict(extra="forbid")

    budget: Decimal = Field(ge=0, max_digits=14, decimal_places=2, description="预算（元）")
    reason: Reason = Field(min_length=2, max_length=2000, description="理由")
