"""The `shopbot:` section of mercato.yaml, which the shop bot owns and checks.

Registered under the `mercato.config` entry-point group (pyproject.toml), so the core parses
it with the shared keys without knowing it.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from mercato.config import ComponentSection, Port, Secret, new_secret


class ShopbotConfig(ComponentSection):
    key: ClassVar[str] = "shopbot"

    localpart: str = "shopbot"
    password: Secret = Field(default_factory=new_secret)
    # /health and /metrics of the bot.
    bind_address: str = "127.0.0.1"
    port: Port = 8092
    prefix: str = "!"
