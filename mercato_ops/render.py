"""Render homeserver-config/ templates into the data directory.

Templates are data: everything Synapse reads comes from them and from
mercato.yaml, so `make run`, the tests and docker-compose.yml share one source.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
from signedjson.key import generate_signing_key, write_signing_keys

from appservices.commerce.config import CommerceConfig
from bridges.contacts.config import ContactsConfig
from mercato.config import AppServiceConfig, MercatoConfig, reachable_host

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "homeserver-config"


@dataclass(frozen=True)
class Worker:
    name: str
    role: str
    port: int
    resources: tuple[str, ...]
    replication: bool = False
    # Its Prometheus listener; None when synapse.metrics_port turns metrics off.
    metrics_port: int | None = None

    def config_path(self, synapse_dir: Path) -> Path:
        return synapse_dir / "workers" / f"{self.name}.yaml"


@dataclass(frozen=True)
class ScaleLayout:
    """Where the main process and each worker listen in the scale profile."""

    main_port: int
    main_replication_port: int
    workers: tuple[Worker, ...]

    @property
    def reader(self) -> Worker:
        return self.workers[0]

    @property
    def event_persister(self) -> str:
        return next((w.name for w in self.workers if w.role == "event persister"), "")

    @classmethod
    def for_config(cls, config: MercatoConfig) -> ScaleLayout:
        base = config.scale.worker_port_base
        workers: tuple[Worker, ...] = (
            Worker("generic1", "client and federation reads", base + 2,
                   ("client", "federation")),
            Worker("event_persister1", "event persister", base + 3, ("replication",),
                   replication=True),
            Worker("federation_sender1", "federation sender", base + 4, ("health",)),
            Worker("pusher1", "pusher", base + 5, ("health",)),
            Worker("appservice1", "appservice sender", base + 6, ("health",)),
        )
        if config.synapse.metrics_port is not None:
            # Each worker's metrics on the port five above its own: 18107-18111 by default.
            workers = tuple(replace(w, metrics_port=w.port + len(workers)) for w in workers)
        return cls(main_port=base, main_replication_port=base + 1, workers=workers)


@dataclass(frozen=True)
class RenderedPaths:
    data_dir: Path
    synapse_dir: Path
    log_dir: Path
    homeserver_config: Path
    log_config: Path
    commerce_registration: Path
    contacts_registration: Path
    signing_key: Path

    @classmethod
    def for_config(cls, config: MercatoConfig) -> RenderedPaths:
        data = config.data_path
        synapse = data / "synapse"
        return cls(
            data_dir=data,
            synapse_dir=synapse,
            log_dir=data / "logs",
            homeserver_config=synapse / "homeserver.yaml",
            log_config=synapse / "log.yaml",
            commerce_registration=synapse / "appservices" / "commerce.yaml",
            contacts_registration=synapse / "appservices" / "contacts.yaml",
            signing_key=synapse / "signing.key",
        )


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # YAML, not HTML; values are quoted in the templates
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def namespace_regex(sigil: str, prefix: str, server_name: str) -> str:
    """An anchored namespace regex: only `<sigil><prefix>…:<server_name>` matches.

    User IDs are lower case by the spec; room aliases may hold any character but ':',
    so the alias namespace claims all of them (no look-alike #shop_Demo for anyone).
    """
    body = "[a-z0-9._=/+-]+" if sigil == "@" else "[^:]+"
    return f"^{re.escape(sigil + prefix)}{body}:{re.escape(server_name)}$"


def exact_user_regex(localpart: str, server_name: str) -> str:
    return f"^{re.escape('@' + localpart)}:{re.escape(server_name)}$"


def registration_context(
    config: MercatoConfig, name: str, service: AppServiceConfig, prefix: str
) -> dict[str, object]:
    return {
        "name": name,
        "service": service,
        "service_host": reachable_host(service.bind_address),
        # The commerce appservice counts post views from read receipts; the contacts
        # bridge passes a user's typing in a portal on to their network.
        "receive_ephemeral": name in ("commerce", "contacts"),
        "user_regexes": [
            exact_user_regex(service.bot_localpart, config.server_name),
            namespace_regex("@", prefix, config.server_name),
        ],
        "alias_regexes": [namespace_regex("#", prefix, config.server_name)],
    }


def _preview_context(config: MercatoConfig) -> dict[str, object]:
    """Product pages on loopback (the embedded profile) need a narrow preview exception."""
    parts = urlsplit(CommerceConfig.of(config).site_url)
    loopback = parts.hostname in ("localhost", "127.0.0.1")
    return {"preview_loopback": loopback, "preview_netloc": re.escape(parts.netloc)}


def _federation_context(config: MercatoConfig) -> dict[str, object]:
    """Synapse's outbound rules: the public-internet defaults unless mercato.yaml says
    otherwise (each key rendered once, so the test switch and the settings cannot clash)."""
    federation = config.federation
    loopback = config.synapse.loopback_federation_for_tests
    return {
        # None: leave Synapse's own list of private and reserved ranges in force.
        "ip_range_blacklist": [] if loopback else federation.ip_range_blacklist,
        "ip_range_whitelist": federation.ip_range_whitelist,
        "verify_certificates": federation.verify_certificates and not loopback,
        "trusted_ca_files": [federation.trusted_ca_file] if federation.trusted_ca_file else [],
    }


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def render_all(config: MercatoConfig, profile: str = "single") -> RenderedPaths:
    """Write Synapse's config, log config, both appservice registrations (and, in the
    scale profile, one config per worker)."""
    paths = RenderedPaths.for_config(config)
    scale = ScaleLayout.for_config(config) if profile == "scale" else None
    env = _environment()
    for directory in (paths.synapse_dir / "media_store", paths.log_dir):
        directory.mkdir(parents=True, exist_ok=True)

    log_format = config.logging.format
    _write_private(
        paths.homeserver_config,
        env.get_template("homeserver.yaml.j2").render(
            config=config, paths=paths, scale=scale, **_preview_context(config),
            commerce_user_id=config.user_id(CommerceConfig.of(config).bot_localpart),
            **_federation_context(config)),
    )
    _write_private(
        paths.log_config,
        env.get_template("log.yaml.j2").render(
            paths=paths, level=config.logging.level, log_format=log_format
        ),
    )
    registration = env.get_template("appservice.yaml.j2")
    _write_private(
        paths.commerce_registration,
        registration.render(**registration_context(
            config, "commerce", CommerceConfig.of(config), config.commerce.user_prefix)),
    )
    _write_private(
        paths.contacts_registration,
        registration.render(**registration_context(
            config, "contacts", ContactsConfig.of(config), config.contacts.user_prefix)),
    )
    if scale is not None:
        worker_template = env.get_template("worker.yaml.j2")
        for worker in scale.workers:
            _write_private(worker.config_path(paths.synapse_dir),
                           worker_template.render(worker=worker, paths=paths,
                                                  config=config))
    if not paths.signing_key.exists():
        key = io.StringIO()
        write_signing_keys(key, [generate_signing_key("a_mrc0")])
        _write_private(paths.signing_key, key.getvalue())
    return paths
