"""The registry's tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel
from subsidy_common.columns import UtcDateTime
from subsidy_common.naming import NAMING_CONVENTION

SQLModel.metadata.naming_convention = NAMING_CONVENTION


class Region(SQLModel, table=True):
    """An administrative division (GB/T 2260) or a park, with its parent."""

    code: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=60)
    parent: str | None = Field(default=None, foreign_key="region.code", max_length=16)
    level: str = Field(max_length=16)
    position: int = Field(
        default=0,
        description="order in the reference file",
        sa_column_kwargs={"server_default": "0"},
    )


class Matter(SQLModel, table=True):
    """A kind of thing rewarded, with the attributes its clauses read."""

    key: str = Field(primary_key=True, max_length=80)
    name: str = Field(max_length=80)
    beneficiaries: list[str] = Field(sa_column=Column(JSON, nullable=False))
    attributes: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    strategy: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    subject: str | None = Field(default=None, max_length=200)
    position: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ReferenceVersion(SQLModel, table=True):
    """The regions and matters as they stood from `recorded_at` until the next row: what a
    snapshot of a past instant takes them from, as it takes each document's version."""

    __tablename__ = "reference_version"

    id: int | None = Field(default=None, primary_key=True)
    recorded_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    digest: str = Field(max_length=64)
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class DocumentVersion(SQLModel, table=True):
    """One recorded version of a document; never changed once written, only closed.

    Valid time lives in the content (effective_from/to, repealed_date); transaction time is
    [recorded_at, superseded_at): the registry "as recorded at T" is every version whose
    interval contains T.
    """

    __tablename__ = "document_version"
    # One version of each number, and at most one current (open) version per document.
    __table_args__ = (
        UniqueConstraint("document_id", "version", name="uq_document_version_document_id"),
        Index(
            "ux_document_version_current",
            "document_id",
            unique=True,
            postgresql_where=text("superseded_at IS NULL"),
            sqlite_where=text("superseded_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    document_id: str = Field(max_length=80, index=True)
    version: int
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64)
    origin: str = Field(max_length=16, description="file or api")
    file_hash: str | None = Field(default=None, max_length=64)
    recorded_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    superseded_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    author: str = Field(max_length=120)
    reason: str = Field(max_length=2000)


class AuditEntry(SQLModel, table=True):
    """An append-only record of one change: who, when, why, before and after."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    actor: str = Field(max_length=120)
    action: str = Field(max_length=16)
    document_id: str = Field(max_length=80, index=True)
    version: int
    reason: str = Field(max_length=2000)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class PolicyTree(SQLModel, table=True):
    """The digest of a policy directory as last loaded whole (files and the code checking them).

    A start that finds the same digest has nothing to check or load again.
    """

    __tablename__ = "policy_tree"

    name: str = Field(primary_key=True, max_length=40)
    digest: str = Field(max_length=64)
    loaded_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


metadata = SQLModel.metadata
