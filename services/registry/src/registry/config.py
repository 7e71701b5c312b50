"""Registry settings, read from `REGISTRY_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from subsidy_common.settings import REPO_ROOT, ServiceSettings


class Settings(ServiceSettings):
    """How the registry runs."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    policies_dir: Path = Field(default=REPO_ROOT / "policies")
    load_policies_on_start: bool = True
