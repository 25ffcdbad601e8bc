"""The `commerce:` section of mercato.yaml, which the commerce appservice owns and checks.

Registered under the `mercato.config` entry-point group (pyproject.toml), so the core parses
it with the shared keys without knowing it.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from mercato.config import AppServiceConfig, Port, Secret, Section, new_secret


class CircleConfig(Section):
    """`commerce.circle`: the Circle's allowances (docs/circle.md)."""

    # Recommendations one user may post in any 24 hours (⭐, the bot's recommend, the API).
    recommendations_per_day: int = Field(default=20, ge=1, le=1000)
    # The contacts bridge's API, asked who a user's friends are; empty: the bridge of this
    # network (contacts.bind_address and contacts.port).
    contacts_url: str = ""


class CommerceConfig(AppServiceConfig):
    key: ClassVar[str] = "commerce"

    port: Port = 8090
    bot_localpart: str = "mercato"
    # Shops are @<prefix><slug> and their channels #<prefix><slug>.
    user_prefix: str = "shop_"
    # What the shop bot presents to the commerce API (with the user it acts for).
    service_token: Secret = Field(default_factory=new_secret)
    # What the operator (and `mercato admin`) presents to the commerce API.
    operator_token: Secret = Field(default_factory=new_secret)
    # Extra CA certificates trusted when checking a shop's domain proof (PEM file).
    domain_proof_ca_file: str = ""
    # Extra CA certificates trusted when delivering a shop's webhooks (PEM file); webhook
    # endpoints are https:// only, checked against the system's CAs and these.
    webhook_ca_file: str = ""
    # Where people (and Synapse's URL previews) reach product pages; empty means
    # http://localhost:<port>. In production: the https:// address of a reverse proxy.
    public_url: str = ""
    # The Circle: recommendations a day, and where the contacts bridge is asked for friends.
    circle: CircleConfig = CircleConfig()

