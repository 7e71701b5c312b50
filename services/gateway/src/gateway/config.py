"""Gateway settings, read from `GATEWAY_*` environment variables (and `SUBSIDY_ADMIN_KEY`)."""

from __future__ import annotations

from limits import parse_many
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict
from subsidy_common.settings import ServiceSettings, refuse_placeholder

from gateway.auth.keys import KEY_PREFIX, weakness


class Settings(ServiceSettings):
    """How the gateway runs and where its downstream services are."""

    # An error names the setting and what is wrong with it, never the value it was given: the
    # admin key and the database and Redis URLs (with their passwords) would end up in the logs.
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", extra="ignore", hide_input_in_errors=True
    )

    registry_url: str = "http://127.0.0.1:8001"
    calculator_url: str = Field(
        default="http://127.0.0.1:8002",
        description="The calculator's URL, or the URLs of its instances separated by commas:"
        " each request goes to the instance with the fewest requests in flight",
    )
    batch_part_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="An NDJSON batch goes to the calculator in parts of about this many bytes,"
        " spread over its instances and answered in order",
    )
    batch_parts_in_flight: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Parts of one batch at the calculator at once; twice its instances when"
        " unset (behind one URL that balances over replicas, about twice the replicas)",
    )
    calculator_instances_dns: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$",
        description="host:port of a DNS name that resolves to every calculator instance (a"
        " Kubernetes headless Service): a policy write asks each to read the registry again"
        " before it is answered. Unset: the instances of calculator_url are asked",
    )
    downstream_timeout: float = Field(default=10.0, gt=0, le=120)
    downstream_connect_timeout: float = Field(default=1.0, gt=0, le=30)
    admin_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SUBSIDY_ADMIN_KEY", "GATEWAY_ADMIN_KEY", "admin_key"),
        description="The bootstrap admin key: the tenant it belongs to is created on start, and"
        " a bootstrap key it replaces is revoked. sk_ and at least 32 random URL-safe characters",
    )
    admin_region: str = Field(default="510500", description="Region of the first admin tenant")
    key_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    redis_url: str | None = Field(
        default=None,
        description="Rate-limit counters shared by replicas (redis://…); in memory when unset",
    )
    rate_limit: str = Field(
        default="600/minute",
        description="Requests each tenant may make in a sliding window, e.g. 600/minute, 20/second",
    )
    rate_limit_prefix: str = Field(
        default="subsidy-gateway",
        min_length=1,
        max_length=100,
        description="Prefix of the rate-limit keys in Redis, so deployments can share one server",
    )
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        reason = weakness(value.get_secret_value())
        if reason is not None:
            raise ValueError(
                f"SUBSIDY_ADMIN_KEY is refused: {reason}. Make one with: python3 -c"
                f" 'import secrets; print(\"{KEY_PREFIX}\" + secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("calculator_url")
    @classmethod
    def _instance_urls(cls, value: str) -> str:
        urls = [url.strip() for url in value.split(",")]
        for url in urls:
            scheme, _, rest = url.partition("://")
            if scheme not in ("http", "https") or not rest:
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return ",".join(urls)

    @property
    def calculator_urls(self) -> list[str]:
        """The calculator's instances."""
        return self.calculator_url.split(",")

    @field_validator("redis_url")
    @classmethod
    def _redis_filled_in(cls, value: str | None) -> str | None:
        return refuse_placeholder(value)

    @field_validator("rate_limit")
    @classmethod
    def _one_rate_limit(cls, value: str) -> str:
        if len(parse_many(value)) != 1:  # parse_many raises ValueError on what it cannot read
            raise ValueError("give one limit, such as 600/minute")
        return value
