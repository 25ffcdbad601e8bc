"""The XMPP connector: a user's own XMPP account, through slixmpp (docs/xmpp.md)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridges.contacts.connectors.base import (
    BadAddress,
    Connector,
    CredentialField,
    RemoteID,
    Session,
    SessionEvents,
)
from mercato.config import ConfigError

# localpart@domain, no resource: what a roster holds and what users type.
_BARE_JID = re.compile(r"^[^@/\s\"&'<>:]{1,1023}@[a-z0-9.-]{1,253}$")


class XmppSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # Where to reach a domain's server when DNS (SRV records) should not decide:
    # {"example.org": "xmpp.example.org:5222"}.
    servers: dict[str, str] = {}
    # Connect without TLS to servers on a loopback address. For test servers only.
    plaintext_on_loopback: bool = False
    resource: str = Field(default="mercato", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    # Files people send from XMPP are copied to the media repository up to this size.
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # Copy files whose links point at loopback or private addresses. For test servers
    # only: otherwise a contact could make the bridge fetch from the operator's network.
    files_from_private_addresses: bool = False

    @field_validator("servers")
    @classmethod
    def _servers(cls, value: dict[str, str]) -> dict[str, str]:
        for domain, address in value.items():
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{domain}: must be host:port, such as xmpp.example.org:5222")
        return {domain.lower(): address for domain, address in value.items()}

    def address_of(self, domain: str) -> tuple[str, int] | None:
        configured = self.servers.get(domain)
        if configured is None:
            return None
        host, _, port = configured.rpartition(":")
        return host.strip("[]"), int(port)

    def plaintext_allowed(self, host: str | None) -> bool:
        if not self.plaintext_on_loopback or host is None:
            return False
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host == "localhost"


def normalise_jid(text: str) -> str:
    jid = text.strip().removeprefix("xmpp:").split("/", 1)[0]
    local, _, domain = jid.rpartition("@")
    jid = f"{local.lower()}@{domain.lower().rstrip('.')}"
    if not _BARE_JID.fullmatch(jid):
        raise BadAddress("an XMPP address looks like name@example.org")
    return jid


class XmppConnector(Connector):
    network = "xmpp"
    label = "XMPP"
    credentials = (CredentialField("jid", "your XMPP address, such as you@example.org"),
                   CredentialField("password", "your XMPP password", secret=True))

    def __init__(self, settings: Mapping[str, Any]) -> None:
        try:
            self.settings = XmppSettings.model_validate(dict(settings))
        except ValidationError as e:
            detail = "; ".join(f"contacts.networks.xmpp.{'.'.join(map(str, err['loc']))}: "
                               f"{err['msg'].removeprefix('Value error, ')}"
                               for err in e.errors())
            raise ConfigError(f"invalid configuration: {detail}") from None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def max_file_bytes(self) -> int:
        return self.settings.max_file_bytes

    @property
    def files_from_private_addresses(self) -> bool:
        return self.settings.files_from_private_addresses

    def parse_address(self, text: str) -> RemoteID:
        return RemoteID(normalise_jid(text))

    def identifiers(self, remote_id: RemoteID) -> tuple[tuple[str, ...], tuple[str, ...]]:
        # Many people's JID is also their email address (or the one they opt in with).
        return (str(remote_id),), ()

    def session(self, credentials: Mapping[str, str], events: SessionEvents) -> Session:
        from bridges.contacts.connectors.xmpp.session import XmppSession

        return XmppSession(self.settings, normalise_jid(credentials["jid"]),
                           credentials["password"], events)
