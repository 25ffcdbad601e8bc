"""The whole network's configuration: the keys every component shares, and its sections.

`MercatoConfig` declares the shared keys. The model a file is parsed into adds each
registered component's section as a field of its own (`network_model`), so
`config.commerce` is a frozen `CommerceConfig` like `config.synapse` is a `SynapseConfig`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import Field, create_model, field_validator

from mercato.config.operations import DemoConfig, ScaleConfig
from mercato.config.sections import ComponentSection, Section, registered_sections
from mercato.config.synapse import FederationConfig, SynapseConfig

# Matrix server names: a DNS name, IPv4 or [IPv6] literal, with an optional port.
_SERVER_NAME = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "auto": readable on a terminal, JSON lines otherwise.
    format: Literal["auto", "console", "json"] = "auto"


class MercatoConfig(Section):
    """The shared keys; a parsed config is a `network_model()`, which adds the sections."""

    server_name: str = "localhost"
    # Where clients reach Synapse; derived from the Synapse port when empty.
    public_baseurl: str = ""
    # Relative paths are relative to the directory holding mercato.yaml.
    data_dir: str = "data"
    synapse: SynapseConfig = Field(default_factory=SynapseConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    demo: DemoConfig = Field(default_factory=DemoConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    scale: ScaleConfig = Field(default_factory=ScaleConfig)

    # Set by load_config, not by the file.
    base_dir: str = Field(default=".", exclude=True)

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str) -> str:
        if not _SERVER_NAME.fullmatch(value):
            raise ValueError("must be a host name such as example.com (optionally with :port)")
        return value

    @field_validator("public_baseurl")
    @classmethod
    def _baseurl(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    # Derived values, so every component computes them the same way.

    @property
    def data_path(self) -> Path:
        path = Path(self.data_dir)
        return path if path.is_absolute() else (Path(self.base_dir) / path).resolve()

    @property
    def homeserver_url(self) -> str:
        """The URL Mercato's own components use to reach Synapse's client API."""
        return f"http://{reachable_host(self.synapse.bind_address)}:{self.synapse.port}"

    @property
    def client_baseurl(self) -> str:
        """The URL people type into their Matrix client."""
        if self.public_baseurl:
            return self.public_baseurl.rstrip("/")
        return f"http://localhost:{self.synapse.port}"

    def database_url(self, component: str) -> str:
        """Where a component keeps its data: its section's `database`, or SQLite in data_dir."""
        configured = getattr(self, component).database
        if configured:
            return configured
        return f"sqlite:{self.data_path / (component + '.db')}"

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def sections(self) -> dict[str, ComponentSection]:
        """The components' sections by key, in the order they are registered."""
        return {key: value for key in type(self).model_fields
                if isinstance(value := getattr(self, key), ComponentSection)}

    if TYPE_CHECKING:
        # A component's section (`config.commerce`) is a field of the parsed model only;
        # the core cannot name its type. Components read theirs typed, `CommerceConfig.of`.
        def __getattr__(self, key: str) -> AnySection: ...


class AnySection(Protocol):
    """What mypy knows of `config.<component>` outside the component: any attribute."""

    def __getattr__(self, name: str) -> Any: ...


@cache
def network_model() -> type[MercatoConfig]:
    """MercatoConfig with a field for each installed component's section."""
    return model_with(registered_sections())


def model_with(sections: Mapping[str, type[ComponentSection]]) -> type[MercatoConfig]:
    """MercatoConfig with a field for each of `sections`, absent ones taking their defaults."""
    fields: dict[str, Any] = {key: (section, Field(default_factory=section))
                              for key, section in sections.items()}
    return create_model("MercatoConfig", __base__=MercatoConfig, __module__=__name__, **fields)


def reachable_host(bind_address: str) -> str:
    """How a process on this machine reaches something bound to `bind_address`."""
    if bind_address in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{bind_address}]" if ":" in bind_address else bind_address


