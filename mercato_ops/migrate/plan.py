"""What a migration moves and whether it may start: the SQLite databases still in use,
the PostgreSQL database each goes to, mercato.yaml as it will read afterwards, and the
check that the network is stopped."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mercato.config import MercatoConfig, parse_config, reachable_host

COMPONENTS = ("commerce", "contacts")


class MigrationError(Exception):
    """The migration cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """One SQLite database and the PostgreSQL database it moves to."""

    part: str  # "synapse", "commerce" or "contacts"
    sqlite_path: Path
    database: str  # the PostgreSQL database's name
    url: str



def plan(config: MercatoConfig, server: str, prefix: str) -> list[Target]:
    """What is still on SQLite, and where each of it goes (the scale profile's names, so
    `--profile scale` finds the same data)."""
    server = server.rstrip("/")
    targets = []
    if config.synapse.database == "sqlite":
        targets.append(Target("synapse", config.data_path / "synapse" / "homeserver.db",
                              f"{prefix}synapse", f"{server}/{prefix}synapse"))
    for component in COMPONENTS:
        url = config.database_url(component)
        if url.startswith("sqlite:"):
            path = Path(url.removeprefix("sqlite:").removeprefix("//"))
            # Components run in the data directory: a relative path is relative to it.
            path = path if path.is_absolute() else config.data_path / path
            targets.append(Target(component, path, f"{prefix}{component}",
                                  f"{server}/{prefix}{component}"))
    return targets


def listening_endpoints(config: MercatoConfig) -> list[tuple[str, str, int]]:
    """Where a running network of this config answers: (setting, host, port)."""
    endpoints = [("synapse.port", reachable_host(config.synapse.bind_address),
                  config.synapse.port)]
    if config.synapse.federation_port:
        endpoints.append(("synapse.federation_port",
                          reachable_host(config.synapse.bind_address),
                          config.synapse.federation_port))
    for name in ("commerce", "contacts", "shopbot"):
        section = getattr(config, name)
        endpoints.append((f"{name}.port", reachable_host(section.bind_address), section.port))
    return [(key, host.strip("[]"), port) for key, host, port in endpoints]


def migrated_config(raw: Mapping[str, Any], base_dir: Path, server: str, prefix: str,
                    targets: Iterable[Target]) -> MercatoConfig:
    """mercato.yaml after the move: each migrated part on its PostgreSQL database, and the
    scale section naming the same server and prefix."""
    updated: dict[str, Any] = {key: dict(value) if isinstance(value, dict) else value
                               for key, value in raw.items()}
    for target in targets:
        updated.setdefault(target.part, {})["database"] = target.url
    updated.setdefault("scale", {}).update({"postgres": server.rstrip("/"),
                                            "database_prefix": prefix})
    return parse_config(updated, base_dir=base_dir)


def backup_path(config_path: Path, now: datetime) -> Path:
    return config_path.with_name(f"{config_path.name}.sqlite-{now:%Y%m%d-%H%M%S}")



def check_stopped(config: MercatoConfig) -> None:
    """Refuse while any process of the network answers: the databases must be still."""
    for key, host, port in listening_endpoints(config):
        try:
            with socket.create_connection((host, port), timeout=1):
                pass
        except OSError:
            continue
        raise MigrationError(
            f"the network is running (something answers on {host}:{port}, {key}). Stop it "
            "first (Ctrl-C where `mercato up` runs, or `docker compose stop`), then run "
            "this command again.")

