"""The calculator's tables: claims, the ledger balances they move, and idempotency records."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Dialect, Index, LargeBinary, Numeric
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel
from subsidy_common.columns import UtcDateTime
from subsidy_common.naming import NAMING_CONVENTION

SQLModel.metadata.naming_convention = NAMING_CONVENTION
CENT = Decimal("0.01")


class Fen(TypeDecorator[Decimal]):
    """Yuan kept as a whole number of fen: SQLite has no exact decimal, and its NUMERIC holds
    250000.10 as a binary float, which its own arithmetic then moves off the fen."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        # Rounded as PostgreSQL rounds into numeric(14, 2): half away from zero.
        return int(Decimal(value).quantize(CENT, ROUND_HALF_UP).scaleb(2))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value).scaleb(-2)


# Exact decimal on PostgreSQL, whole fen on SQLite (`2026-12-07_money_in_fen_on_sqlite.py`):
# every statement that adds, compares or sums money stays exact on both.
MONEY = Numeric(14, 2).with_variant(Fen(), "sqlite")


class Claim(SQLModel, table=True):
    """A request to be paid for one event, with the decision and what it granted."""

    # A tenant's claims newest first; an applicant's for one subject; a subject's of any
    # applicant (whether it was paid to another).
    __table_args__ = (
        Index("ix_claim_tenant_id", "tenant_id", "created_at"),
        Index("ix_claim_applicant_id", "applicant_id", "matter", "subject"),
        Index("ix_claim_matter_subject", "matter", "subject"),
    )

    id: str = Field(primary_key=True, max_length=36)
    tenant_id: str = Field(max_length=36)
    applicant_id: str = Field(max_length=18)
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
    # Whether the grant added its amount to its cap key's cumulative and yearly balances, which
    # its revocation takes it back from. None: not known (recorded before these were kept, and
    # the ledger proves neither, `2026-12-07_claim_cap_moves.py`); a revocation leaves it be.
    cumulative_cap_moved: bool | None = Field(default=None, sa_column=Column(Boolean))
    yearly_cap_moved: bool | None = Field(default=None, sa_column=Column(Boolean))
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


class SubjectPayment(SQLModel, table=True):
    """How many claims paid for one (matter, subject), whichever the applicant: on PostgreSQL a
    paying claim moves it by compare-and-set, so that two applicants cannot both be paid for one
    subject at once, each before the other's claim was there to be held for review. SQLite's
    claims hold the subject's lock in its one process instead."""

    __tablename__ = "subject_payment"

    matter: str = Field(primary_key=True, max_length=80)
    subject: str = Field(primary_key=True, max_length=200)
    payments: int = Field(sa_column=Column(BigInteger, nullable=False))


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
    granted: Decimal = Field(sa_column=Column(MONEY, nullable=False, server_default="0"))
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
