"""The gateway's tables: tenants, their API keys, and the record of changes to them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Column, false
from sqlmodel import Field, SQLModel
from subsidy_common.columns import UtcDateTime
from subsidy_common.naming import NAMING_CONVENTION

SQLModel.metadata.naming_convention = NAMING_CONVENTION


class Tenant(SQLModel, table=True):
    """A county, park or city system that calls the API, with its role and region."""

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=100, unique=True)
    role: str = Field(max_length=16)
    region: str = Field(max_length=16)
    created_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    disabled_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )


class ApiKey(SQLModel, table=True):
    """A key of a tenant, stored only as its SHA-256 digest."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=36)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=36, index=True)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    revoked_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    # Put there by SUBSIDY_ADMIN_KEY rather than issued through the API: the gateway revokes
    # such a key when it starts with another one, and never touches the others.
    bootstrap: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, server_default=false())
    )


class TenantChange(SQLModel, table=True):
    """An append-only record of one change to a tenant or its keys: who, when, what."""

    __tablename__ = "tenant_change"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    actor: str = Field(max_length=120)
    action: str = Field(max_length=16)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=36, index=True)
    key_id: str | None = Field(default=None, max_length=36)
    revoked_key_ids: list[str] = Field(sa_column=Column(JSON, nullable=False))


metadata = SQLModel.metadata
