"""Synapse's own settings and whom it federates with: keys every Mercato network shares."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, StrictBool, field_validator

from mercato.config.sections import Port, PortNumber, Secret, Section, new_secret


class SynapseConfig(Section):
    bind_address: str = "127.0.0.1"
    port: Port = 8008
    # "sqlite" (embedded, the default) or a postgres:// URL.
    database: str = "sqlite"
    registration_shared_secret: Secret = Field(default_factory=new_secret)
    macaroon_secret_key: Secret = Field(default_factory=new_secret)
    form_secret: Secret = Field(default_factory=new_secret)
    enable_registration: bool = False
    # Raises every client rate limit: for test and benchmark networks only.
    relaxed_rate_limits: bool = False
    # A separate TLS listener for federation (the standard is 8448); unset, federation
    # is served on the client listener, for a reverse proxy to terminate TLS.
    # Checked against the other ports once its TLS files are (checks.py).
    federation_port: PortNumber | None = None
    tls_certificate: str = ""
    tls_private_key: str = ""
    # Tests on loopback only: trust self-signed certificates and allow private
    # addresses for federation. Refused unless the server name is a loopback address.
    loopback_federation_for_tests: bool = False
    # Synapse's Prometheus metrics (/_synapse/metrics) on a listener of their own, never
    # the public port; null turns them off. Scale profile workers: scale.worker_port_base.
    metrics_port: Port | None = 9000
    metrics_bind_address: str = "127.0.0.1"

    @field_validator("metrics_bind_address")
    @classmethod
    def _metrics_bind(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1 (loopback: only "
                             "this machine) or 0.0.0.0 (every interface)") from None

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if value != "sqlite" and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must be 'sqlite' or a postgres://user@host:port/dbname URL")
        return value


def _ip_ranges(values: list[str]) -> list[str]:
    """Each entry as a CIDR range (10.0.0.0/8, fd00::/8); a single address is a /32 or /128."""
    ranges = []
    for value in values:
        try:
            ranges.append(str(ipaddress.ip_network(value.strip(), strict=True)))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP range such as 10.0.0.0/8, "
                             "192.168.1.0/24 or fd00::/8 (the address must be the first "
                             "of its range)") from None
    return ranges


class FederationConfig(Section):
    """Whom Synapse may connect to and which certificates it trusts: for homeservers on a
    private network or with a private CA. The defaults are those of the public internet."""

    # null: Synapse's own list of private, loopback and reserved ranges.
    ip_range_blacklist: list[str] | None = None
    # Ranges let through although the block list holds them (your servers' private network).
    ip_range_whitelist: list[str] = []
    # A PEM file of the CA that signed the other homeservers' certificates; it replaces
    # the public CAs for federation.
    trusted_ca_file: str = ""
    # false accepts any certificate: anyone on the path can pose as any homeserver.
    # Strict: only a YAML boolean turns it off, not a string such as "0" or "no".
    verify_certificates: StrictBool = True

    @field_validator("ip_range_blacklist")
    @classmethod
    def _blacklist(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must not be empty: that lets other servers make yours connect "
                             "to any machine on your network. Leave it out (null) and list "
                             "your servers' ranges in federation.ip_range_whitelist")
        return _ip_ranges(value)

    @field_validator("ip_range_whitelist")
    @classmethod
    def _whitelist(cls, value: list[str]) -> list[str]:
        ranges = _ip_ranges(value)
        for entry in ranges:
            if entry.endswith("/0"):
                raise ValueError(f"{entry} lets federation reach every address; list only "
                                 "the ranges your homeservers are on, such as 10.1.0.0/16")
        return ranges

    @field_validator("trusted_ca_file")
    @classmethod
    def _ca_file(cls, value: str) -> str:
        if value and (not Path(value).is_absolute() or not value.isprintable()):
            raise ValueError("must be an absolute path to a PEM file of a CA certificate")
        return value
