"""The `commerce:` section of mercato.yaml, which the commerce appservice owns and checks.

Registered under the `mercato.config` entry-point group (pyproject.toml), so the core parses
it with the shared keys without knowing it.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from mercato.config import AppServiceConfig, Port, Secret, new_secret


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

