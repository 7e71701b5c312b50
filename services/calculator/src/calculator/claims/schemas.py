"""Claim requests."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from calculator.calculations.schemas import ApplicantIn, EventIn


class ClaimIn(BaseModel):
    """A request to be paid for one event."""

    model_config = ConfigDict(extra="forbid")

    applicant: ApplicantIn
    event: EventIn


class RevokeIn(BaseModel):
    """Take a grant back (追回)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=2000, description="追回理由")
