"""Settings of `mercato up` itself: the demo shop it seeds and the scale-out profile.

They belong to the operations side; they stay in the core until the operations package can
own its sections without the core importing it.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from mercato.config.sections import (
    AppServiceConfig,
    PortNumber,
    Secret,
    Section,
    registered_sections,
)

if TYPE_CHECKING:
    from mercato.config.network import MercatoConfig


class DemoAccount(Section):
    localpart: str
    password: str = Field(default_factory=lambda: secrets.token_urlsafe(9), min_length=8)


class DemoConfig(Section):
    enabled: bool = True
    shop_slug: str = "demo"
    shop_name: str = "Mercato Demo Shop"
    buyer: DemoAccount = Field(default_factory=lambda: DemoAccount(localpart="buyer"))
    merchant: DemoAccount = Field(default_factory=lambda: DemoAccount(localpart="merchant"))
    api_key: Secret = Field(default_factory=lambda: "mk_" + secrets.token_urlsafe(32))

    @field_validator("shop_slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,30}", value):
            raise ValueError("must be 2-31 lowercase letters, digits or '-'")
        return value


class ScaleConfig(Section):
    """The scale-out profile (`mercato up --profile scale`): Synapse workers on PostgreSQL
    with Redis, and Mercato's components on PostgreSQL."""

    # A PostgreSQL server; the databases below are created on it when missing.
    postgres: str = "postgres://postgres@127.0.0.1:5432"
    database_prefix: str = "mercato_"
    redis_host: str = "127.0.0.1"
    redis_port: PortNumber = 6379
    # Main process and workers listen on ports from here up (internal, loopback).
    worker_port_base: PortNumber = 18100
    # The most PostgreSQL connections each process holds: every Synapse process's pool
    # (`cp_max`) and each Mercato component's. Six Synapse processes and two components
    # hold up to 8× this; keep it under the server's `max_connections`.
    connections_per_process: int = Field(default=10, ge=2, le=100)

    @field_validator("postgres")
    @classmethod
    def _postgres(cls, value: str) -> str:
        if not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must be a postgres://user@host:port URL of the server")
        return value.rstrip("/")

    @field_validator("database_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", value):
            raise ValueError("must be lowercase letters, digits and _ (a PostgreSQL name)")
        return value


def scale_profile(config: MercatoConfig) -> MercatoConfig:
    """The same network, with every database on the scale profile's PostgreSQL server."""
    server, prefix = config.scale.postgres, config.scale.database_prefix
    update: dict[str, Any] = {
        "synapse": config.synapse.model_copy(update={"database": f"{server}/{prefix}synapse"})}
    for key, section in registered_sections().items():
        if issubclass(section, AppServiceConfig):
            update[key] = getattr(config, key).model_copy(
                update={"database": f"{server}/{prefix}{key}"})
    return config.model_copy(update=update)
