"""Settings every service has: where its data lives, which database, how it logs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings

REPO_ROOT = Path(__file__).resolve().parents[4]


class ServiceSettings(BaseSettings):
    """Common fields; each service subclasses this with its own env prefix."""

    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    data_dir: Path = Field(
        default=Path("var"),
        validation_alias=AliasChoices("SUBSIDY_DATA_DIR", "data_dir"),
        description="Where the local SQLite files live",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; a SQLite file in data_dir when unset"
    )
    migrate_on_start: bool = True
    migrations_root: Path = Field(default=REPO_ROOT / "migrations")
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    @field_validator("database_url")
    @classmethod
    def _filled_in(cls, value: str | None) -> str | None:
        return refuse_placeholder(value)

    def resolved_database_url(self, service: str) -> str:
        """The configured URL, or the local SQLite file for this service."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    def migrations_dir(self, service: str) -> Path:
        """The Alembic script directory of this service."""
        return self.migrations_root / service


# What deploy/k8s/secret.template.yaml holds until an operator fills it in.
PLACEHOLDER = "REPLACE_ME"


def refuse_placeholder(value: str | None) -> str | None:
    """A setting as given, refused while it still holds the deployment template's placeholder:
    a database URL would fail later on a host named REPLACE_ME, a Redis URL would leave the
    gateway ready with its rate limits off."""
    if value is not None and PLACEHOLDER.lower() in value.lower():
        raise ValueError(f"still holds the template's {PLACEHOLDER}: fill in the real value")
    return value
