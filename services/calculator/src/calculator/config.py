"""Calculator settings, read from `CALCULATOR_*` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from subsidy_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """How the calculator runs and where the registry is."""

    model_config = SettingsConfigDict(env_prefix="CALCULATOR_", extra="ignore")

    registry_url: str = "http://127.0.0.1:8001"
    registry_timeout: float = Field(default=5.0, gt=0, le=120)
    snapshot_refresh_seconds: float = Field(default=2.0, gt=0, le=3600)
