"""The `contacts:` section of mercato.yaml, which the contacts bridge owns and checks.

Registered under the `mercato.config` entry-point group (pyproject.toml), so the core parses
it with the shared keys without knowing it. Each network connector checks its own part,
`contacts.networks.<name>`, when the bridge loads it (bridges/contacts/connectors).
"""

from __future__ import annotations

import re
import secrets
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from mercato.config import (
    AppServiceConfig,
    Port,
    PortNumber,
    Secret,
    Section,
    new_secret,
)


class SmtpConfig(Section):
    """The mail server the contacts bridge sends email verification codes through."""

    # Empty: the bridge does not verify email addresses itself.
    host: str = ""
    port: PortNumber = 587
    # "starttls" (port 587), "tls" (port 465) or "none" (a relay on this machine only).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str = ""
    # The sender of the codes, such as mercato@example.org.
    from_address: str = ""

    @field_validator("from_address")
    @classmethod
    def _from_address(cls, value: str) -> str:
        if value and not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
            raise ValueError("must be an email address such as mercato@example.org")
        return value

    @model_validator(mode="after")
    def _complete(self) -> SmtpConfig:
        if self.host and not self.from_address:
            raise ValueError("from_address must be set when host is (the sender of the codes)")
        return self


class ContactsConfig(AppServiceConfig):
    key: ClassVar[str] = "contacts"

    port: Port = 8091
    bot_localpart: str = "contacts"
    user_prefix: str = "contacts_"
    # Key of the HMACs that are all the bridge keeps of opted-in phone numbers and emails.
    # Changing it makes every opt-in unfindable until its user opts in again.
    hmac_secret: Secret = Field(default_factory=new_secret)
    # The identity-service lookup pepper. Fixed per install: what is stored derives from
    # it, and the plain identifiers needed to recompute it are never kept.
    lookup_pepper: str = Field(default_factory=lambda: secrets.token_hex(16),
                               pattern=r"^[A-Za-z0-9]{8,64}$")
    # Key of the encryption of what users log in to other networks with (XMPP passwords).
    # Changing it makes every stored login unreadable: those users log in again.
    credentials_secret: Secret = Field(default_factory=new_secret)
    # What the commerce appservice presents to ask who a user's friends are (the Circle).
    circle_token: Secret = Field(default_factory=new_secret)
    # Network connectors by name (docs/connectors.md); each checks its own section, and an
    # absent one runs with its defaults. `xmpp: {enabled: false}` turns XMPP off.
    networks: dict[str, dict[str, Any]] = {}
    # Country (ISO 3166 code such as NO) for numbers written without +country code;
    # each user can set their own with the bot's `region` command.
    default_region: str = Field(default="", pattern=r"^([A-Z]{2})?$")
    # Where people open invite links and the import page; empty means
    # http://localhost:<port>. In production: the https:// address of a reverse proxy.
    public_url: str = ""
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_contacts_per_import: int = Field(default=10_000, ge=1)
    # More phone numbers and emails than this in one upload or lookup is enumeration.
    max_identifiers_per_import: int = Field(default=10_000, ge=1)
    # Identifiers looked up per day: a real address book passes, enumeration does not.
    lookups_per_user_per_day: int = Field(default=25_000, ge=1)
    lookups_per_ip_per_day: int = Field(default=25_000, ge=1)
    # All users of one other homeserver together (its operator can make any number of
    # accounts): imports by its users, and their identity-service lookups.
    lookups_per_remote_server_per_day: int = Field(default=100_000, ge=1)
    # How the bridge verifies the phone numbers and emails people opt in with, when the
    # homeserver has not verified them already: codes by mail (smtp.host) and by SMS
    # through a gateway that takes POST {"to": "+47…", "text": "…"} (sms_webhook_url,
    # with sms_webhook_token as a Bearer token if set). Left empty, opt-ins by that
    # medium need the homeserver's verification.
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    sms_webhook_url: str = ""
    sms_webhook_token: str = ""

    @field_validator("sms_webhook_url")
    @classmethod
    def _webhook(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("must be an http:// or https:// URL (or empty: no SMS codes)")
        return value

