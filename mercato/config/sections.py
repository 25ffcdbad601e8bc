"""What every section of mercato.yaml is built from, and the registry of components' sections.

The core knows only the shared keys. Each component brings its own section class (as
Synapse modules parse their own config and mautrix bridges bring their own config class)
and registers it under the `mercato.config` entry-point group. The core finds the ports
sections listen on by their type, `Port`, and the secrets to generate by their random
defaults (`Secret` fields with `new_secret`), without naming a component.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.fields import FieldInfo

if TYPE_CHECKING:
    from mercato.config.network import MercatoConfig

ENTRY_POINT_GROUP = "mercato.config"

_LOCALPART = re.compile(r"^[a-z0-9._=/+-]+$")


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class _Listens:
    """Marks a port one of Mercato's processes listens on: no two may be the same."""


LISTENS = _Listens()

# A port Mercato listens on on this machine; every one is checked against the others.
Port = Annotated[int, Field(ge=1, le=65535), LISTENS]
# A port of another server (SMTP, Redis) or one checked by its own section: range only.
PortNumber = Annotated[int, Field(ge=1, le=65535)]
Secret = Annotated[str, Field(min_length=16)]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Section(BaseModel):
    """A section of mercato.yaml: frozen once parsed, and a misspelt key is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ComponentSection(Section):
    """A top-level section a component owns, registered under its `key` (its entry point's name)."""

    key: ClassVar[str]

    @classmethod
    def of(cls, config: MercatoConfig) -> Self:
        """This component's section of a parsed config, typed as the component declares it."""
        section = getattr(config, cls.key)
        if not isinstance(section, cls):
            raise TypeError(f"{cls.key} holds a {type(section).__name__}, not a {cls.__name__}")
        return section


def check_user_prefix(value: str) -> str:
    """The localpart prefix an appservice claims its users (and rooms) by."""
    if not re.fullmatch(r"[a-z0-9._=/+-]*[_.=-]", value):
        raise ValueError("must be lowercase letters, digits or ._=/+- ending in a separator "
                         "such as '_' (for example 'shop_'); an empty prefix would claim "
                         "every user")
    return value


class AppServiceConfig(ComponentSection):
    """An application service of Mercato's, as Synapse and the service both see it."""

    bind_address: str = "127.0.0.1"
    port: Port
    as_token: Secret = Field(default_factory=new_secret)
    hs_token: Secret = Field(default_factory=new_secret)
    # Empty means "sqlite in the data directory".
    database: str = ""
    bot_localpart: str
    # The service's users (and rooms) are @<prefix>…; a section sets its own default.
    user_prefix: str
    # Where people's browsers reach the service's pages; empty means this machine's port.
    public_url: str = ""

    @property
    def site_url(self) -> str:
        """Where the service's pages are reached: public_url, or this machine's port."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    @field_validator("user_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_user_prefix(value)

    @field_validator("bot_localpart")
    @classmethod
    def _localpart(cls, value: str) -> str:
        if not _LOCALPART.fullmatch(value):
            raise ValueError("must be a Matrix localpart: lowercase letters, digits, ._=/+-")
        return value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgres://", "postgresql://")):
            raise ValueError("must be empty (SQLite in the data directory), sqlite:PATH "
                             "or a postgres:// URL")
        return value


@cache
def registered_sections() -> Mapping[str, type[ComponentSection]]:
    """Every installed component's section class by its key, in the order of the keys."""
    found: dict[str, type[ComponentSection]] = {}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        section = point.load()
        if not (isinstance(section, type) and issubclass(section, ComponentSection)):
            raise ConfigError(f"{point.value} (entry point {point.name} of {ENTRY_POINT_GROUP})"
                              " is not a ComponentSection")
        if getattr(section, "key", None) != point.name:
            raise ConfigError(f"{point.value} must say key = {point.name!r}, the name it is "
                              f"registered under in {ENTRY_POINT_GROUP}")
        found[point.name] = section
    return found


def _marked(field: FieldInfo, marker: object) -> bool:
    """Whether a field's type carries `marker`, also inside `X | None`."""
    if marker in field.metadata:
        return True
    return any(marker in getattr(arg, "__metadata__", ())
               for arg in getattr(field.annotation, "__args__", ()))


def marked_values(section: BaseModel, marker: object, key: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of each set field of a section whose type carries `marker`."""
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        if _marked(field, marker) and value is not None:
            yield f"{key}.{name}", value
