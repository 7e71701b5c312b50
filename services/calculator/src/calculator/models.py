"""The calculator's tables: claims, the ledger balances they move, and idempotency records."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, Numeric
from sqlmodel import Field, SQLModel
from subsidy_common.columns import UtcDateTime
from subsidy_common.naming import NAMING_CONVENTION

SQLModel.metadata.naming_convention = NAMING_CONVENTION

MONEY = Numeric(14, 2)


class Claim(SQLModel, table=True):
    """A request to be paid for one event, with the decision and what it granted."""

    id: str = Field(primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=36, index=True)
    applicant_id: str = Field(max_length=18, index=True)
    applicant_kind: str = Field(max_length=16)
    applicant_name: str = Field(max_length=200)
    name_key: str = Field(max_length=200, description="normalised name for similarity checks")
    region: str = Field(max_length=16)
    matter: str = Field(max_length=80)
    subject: str = Field(max_length=200)
    event_date: dt.date
    status: str = Field(max_length=20)
    initial_status: str = Field(max_length=20, description="the status it was decided with")
    amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    entitlement: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    previously_granted: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    cap_key: str | None = Field(default=None, max_length=120)
    fund: str | None = Field(default=None, max_length=200, description="the budgeted fund drawn on")
    duplicate_of: list[str] = Field(sa_column=Column(JSON, nullable=False))
    review: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    decision: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    registry_version: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    revoked_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    revoked_by: str | None = Field(default=None, max_length=120)
    revoke_reason: str | None = Field(default=None, max_length=2000)


class LedgerBalance(SQLModel, table=True):
    """What has been granted for one (applicant, matter, subject): the unit of 不重复."""

    __tablename__ = "ledger_balance"

    applicant_id: str = Field(primary_key=True, max_length=18)
    matter: str = Field(primary_key=True, max_length=80)
    subject: str = Field(primary_key=True, max_length=200)
    granted: Decimal = Field(sa_column=Column(MONEY, nullable=False))


class CapBalance(SQLModel, table=True):
    """What has been granted under one cap of one applicant (year 0: the cumulative cap)."""

    __tablename__ = "cap_balance"

    applicant_id: str = Field(primary_key=True, max_length=18)
    cap_key: str = Field(primary_key=True, max_length=120)
    year: int = Field(primary_key=True)
    granted: Decimal = Field(sa_column=Column(MONEY, nullable=False))


class FundBudget(SQLModel, table=True):
    """A fund (资金来源) with a budget: what it may grant, and what it has granted."""

    __tablename__ = "fund_budget"

    fund: str = Field(primary_key=True, max_length=200)
    budget: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    granted: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    updated_by: str = Field(max_length=120)
    reason: str = Field(max_length=2000)


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a tenant's Idempotency-Key, replayed byte for byte."""

    __tablename__ = "idempotency_record"

    tenant_id: str = Field(primary_key=True, max_length=36)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    claim_id: str = Field(max_length=36)
    created_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


metadata = SQLModel.metadata
