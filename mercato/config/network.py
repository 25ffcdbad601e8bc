"""One `mercato.yaml` for the whole network, parsed once into frozen objects.

A first run writes the file with safe defaults and fresh random secrets; later
runs keep it. A bad value is refused with a `ConfigError` that names the key and
says what is allowed.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_PATH = Path("mercato.yaml")

# Matrix server names: a DNS name, IPv4 or [IPv6] literal, with an optional port.
_SERVER_NAME = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
_LOCALPART = re.compile(r"^[a-z0-9._=/+-]+$")

Port = Annotated[int, Field(ge=1, le=65535)]
Secret = Annotated[str, Field(min_length=16)]


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _secret() -> str:
    return secrets.token_urlsafe(32)


class SynapseConfig(_Section):
    bind_address: str = "127.0.0.1"
    port: Port = 8008
    # "sqlite" (embedded, the default) or a postgres:// URL.
    database: str = "sqlite"
    registration_shared_secret: Secret = Field(default_factory=_secret)
    macaroon_secret_key: Secret = Field(default_factory=_secret)
    form_secret: Secret = Field(default_factory=_secret)
    enable_registration: bool = False
    # Raises every client rate limit: for test and benchmark networks only.
    relaxed_rate_limits: bool = False
    # A separate TLS listener for federation (the standard is 8448); unset, federation
    # is served on the client listener, for a reverse proxy to terminate TLS.
    federation_port: Port | None = None
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


class FederationConfig(_Section):
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


class AppServiceConfig(_Section):
    """An application service of Mercato's, as Synapse and the service both see it."""

    bind_address: str = "127.0.0.1"
    port: Port
    as_token: Secret = Field(default_factory=_secret)
    hs_token: Secret = Field(default_factory=_secret)
    # Empty means "sqlite in the data directory".
    database: str = ""
    bot_localpart: str

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


def _check_prefix(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9._=/+-]*[_.=-]", value):
        raise ValueError("must be lowercase letters, digits or ._=/+- ending in a separator "
                         "such as '_' (for example 'shop_'); an empty prefix would claim "
                         "every user")
    return value


class CommerceConfig(AppServiceConfig):
    port: Port = 8090
    bot_localpart: str = "mercato"
    # Shops are @<prefix><slug> and their channels #<prefix><slug>.
    user_prefix: str = "shop_"
    # What the shop bot presents to the commerce API (with the user it acts for).
    service_token: Secret = Field(default_factory=_secret)
    # What the operator (and `mercato admin`) presents to the commerce API.
    operator_token: Secret = Field(default_factory=_secret)
    # Extra CA certificates trusted when checking a shop's domain proof (PEM file).
    domain_proof_ca_file: str = ""
    # Where people (and Synapse's URL previews) reach product pages; empty means
    # http://localhost:<port>. In production: the https:// address of a reverse proxy.
    public_url: str = ""

    @field_validator("user_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _check_prefix(value)


class SmtpConfig(_Section):
    """The mail server the contacts bridge sends email verification codes through."""

    # Empty: the bridge does not verify email addresses itself.
    host: str = ""
    port: Port = 587
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
    port: Port = 8091
    bot_localpart: str = "contacts"
    user_prefix: str = "contacts_"
    # Key of the HMACs that are all the bridge keeps of opted-in phone numbers and emails.
    # Changing it makes every opt-in unfindable until its user opts in again.
    hmac_secret: Secret = Field(default_factory=_secret)
    # The identity-service lookup pepper. Fixed per install: what is stored derives from
    # it, and the plain identifiers needed to recompute it are never kept.
    lookup_pepper: str = Field(default_factory=lambda: secrets.token_hex(16),
                               pattern=r"^[A-Za-z0-9]{8,64}$")
    # Key of the encryption of what users log in to other networks with (XMPP passwords).
    # Changing it makes every stored login unreadable: those users log in again.
    credentials_secret: Secret = Field(default_factory=_secret)
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

    @field_validator("user_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _check_prefix(value)

    @field_validator("sms_webhook_url")
    @classmethod
    def _webhook(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("must be an http:// or https:// URL (or empty: no SMS codes)")
        return value


class ShopbotConfig(_Section):
    localpart: str = "shopbot"
    password: Secret = Field(default_factory=_secret)
    # /health and /metrics of the bot.
    bind_address: str = "127.0.0.1"
    port: Port = 8092
    prefix: str = "!"


class DemoAccount(_Section):
    localpart: str
    password: str = Field(default_factory=lambda: secrets.token_urlsafe(9), min_length=8)


class DemoConfig(_Section):
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


class ScaleConfig(_Section):
    """The scale-out profile (`mercato up --profile scale`): Synapse workers on PostgreSQL
    with Redis, and Mercato's components on PostgreSQL."""

    # A PostgreSQL server; the databases below are created on it when missing.
    postgres: str = "postgres://postgres@127.0.0.1:5432"
    database_prefix: str = "mercato_"
    redis_host: str = "127.0.0.1"
    redis_port: Port = 6379
    # Main process and workers listen on ports from here up (internal, loopback).
    worker_port_base: Port = 18100

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


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "auto": readable on a terminal, JSON lines otherwise.
    format: Literal["auto", "console", "json"] = "auto"


class MercatoConfig(_Section):
    server_name: str = "localhost"
    # Where clients reach Synapse; derived from the Synapse port when empty.
    public_baseurl: str = ""
    # Relative paths are relative to the directory holding mercato.yaml.
    data_dir: str = "data"
    synapse: SynapseConfig = Field(default_factory=SynapseConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    commerce: CommerceConfig = Field(default_factory=CommerceConfig)
    contacts: ContactsConfig = Field(default_factory=ContactsConfig)
    shopbot: ShopbotConfig = Field(default_factory=ShopbotConfig)
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

    @property
    def commerce_public_url(self) -> str:
        return (self.commerce.public_url or f"http://localhost:{self.commerce.port}").rstrip("/")

    def database_url(self, component: Literal["commerce", "contacts"]) -> str:
        configured = getattr(self, component).database
        if configured:
            return configured
        return f"sqlite:{self.data_path / (component + '.db')}"

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"


def reachable_host(bind_address: str) -> str:
    """How a process on this machine reaches something bound to `bind_address`."""
    if bind_address in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{bind_address}]" if ":" in bind_address else bind_address


def scale_profile(config: MercatoConfig) -> MercatoConfig:
    """The same network, with every database on the scale profile's PostgreSQL server."""
    server, prefix = config.scale.postgres, config.scale.database_prefix
    return config.model_copy(update={
        "synapse": config.synapse.model_copy(update={"database": f"{server}/{prefix}synapse"}),
        "commerce": config.commerce.model_copy(update={"database": f"{server}/{prefix}commerce"}),
        "contacts": config.contacts.model_copy(update={"database": f"{server}/{prefix}contacts"}),
    })


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "is not a known setting (check the spelling)"
        lines.append(f"{key}: {message}")
    return "; ".join(lines)


def parse_config(raw: Any, base_dir: Path | str = ".") -> MercatoConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("mercato.yaml must hold a mapping of settings at the top level")
    try:
        config = MercatoConfig.model_validate({**raw, "base_dir": str(base_dir)})
    except ValidationError as e:
        raise ConfigError(f"invalid configuration: {_describe(e)}") from None
    _check_consistency(config)
    return config


def _check_consistency(config: MercatoConfig) -> None:
    ports = {
        "synapse.port": config.synapse.port,
        "commerce.port": config.commerce.port,
        "contacts.port": config.contacts.port,
        "shopbot.port": config.shopbot.port,
    }
    if config.synapse.metrics_port is not None:
        ports["synapse.metrics_port"] = config.synapse.metrics_port
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in seen:
            raise ConfigError(f"invalid configuration: {key}: port {port} is already "
                              f"used by {seen[port]}")
        seen[port] = key
    synapse = config.synapse
    if synapse.federation_port and not (synapse.tls_certificate and synapse.tls_private_key):
        raise ConfigError("invalid configuration: synapse.federation_port needs "
                          "synapse.tls_certificate and synapse.tls_private_key")
    if synapse.loopback_federation_for_tests and config.server_name.rsplit(":", 1)[0] not in (
            "127.0.0.1", "localhost", "[::1]"):
        raise ConfigError("invalid configuration: synapse.loopback_federation_for_tests is only "
                          "for test servers on 127.0.0.1; never turn it on for real users")
    if synapse.loopback_federation_for_tests and config.federation.ip_range_blacklist is not None:
        raise ConfigError("invalid configuration: federation.ip_range_blacklist: "
                          "synapse.loopback_federation_for_tests empties the block list "
                          "already; set one or the other")
    if synapse.federation_port:
        ports["synapse.federation_port"] = synapse.federation_port
        if len(set(ports.values())) != len(ports):
            raise ConfigError("invalid configuration: synapse.federation_port is already used")
    if config.commerce.hs_token == config.contacts.hs_token or (
        config.commerce.as_token == config.contacts.as_token
    ):
        raise ConfigError("invalid configuration: commerce and contacts must not share tokens")


def load_config(path: Path | str = DEFAULT_CONFIG_PATH, *, create: bool = False) -> MercatoConfig:
    """Read mercato.yaml; with create=True, write one with fresh secrets if it is missing."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise ConfigError(f"{path} does not exist: run `mercato up` or "
                              "`mercato config init` to create it")
        config = parse_config({}, base_dir=path.parent.resolve())
        write_config(config, path)
        return config
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    config = parse_config(raw, base_dir=path.parent.resolve())
    missing = _missing_generated_values(raw or {}, config)
    if missing:
        if not create:
            # A secret invented now would differ in every process that reads the file.
            raise ConfigError(
                f"{path} leaves out {len(missing)} generated secret(s): {', '.join(missing)}. "
                f"Run `mercato up` or `mercato config render` once: either writes fresh "
                f"values for them into {path.name} (keeping your settings, not your "
                f"comments). Or write each into it yourself")
        try:
            write_config(config, path)
        except OSError as e:
            raise ConfigError(f"{path} leaves out {', '.join(missing)} and cannot be "
                              f"completed ({e}); write them into it") from None
    return config


def config_warnings(config: MercatoConfig) -> list[str]:
    """Settings Mercato accepts but that put the network at risk, said each time it starts."""
    warnings = []
    if not config.federation.verify_certificates:
        warnings.append(
            "federation.verify_certificates is false: Synapse accepts any certificate from "
            "other homeservers, so anyone between them can pose as any server. Use "
            "federation.trusted_ca_file with your private CA instead.")
    return warnings


def _missing_generated_values(raw: dict[str, Any], config: MercatoConfig) -> list[str]:
    """The keys the file leaves out whose default is random (the secrets)."""
    missing: list[str] = []

    def walk(model: type[BaseModel], given: Any, path: tuple[str, ...]) -> None:
        given = given if isinstance(given, dict) else {}
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, given.get(name), (*path, name))
            elif field.default_factory is not None and name not in given:
                missing.append(".".join((*path, name)))

    walk(MercatoConfig, raw, ())
    return missing


def write_config(config: MercatoConfig, path: Path | str) -> None:
    """Write the config with every default spelled out, readable only by its owner."""
    path = Path(path)
    data = config.model_dump(mode="json")
    header = ("# Mercato configuration. Generated with random secrets on first run;\n"
              "# edit freely, then restart with `make run`. Reference: docs/operator-guide.md\n")
    tmp = path.with_suffix(".yaml.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(header)
        yaml.safe_dump(data, out, sort_keys=False)
    os.replace(tmp, path)
