"""Porting Synapse's database with Synapse's own synapse_port_db (after its pending
background updates, which the port script requires done), then checking the row counts
of the tables users would miss."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from mercato.config import MercatoConfig
from mercato_ops.migrate.databases import connect_postgres, read_only, sqlite_count
from mercato_ops.migrate.plan import MigrationError, Target

# Synapse tables whose row counts are compared after the port: what users would miss.
SYNAPSE_CHECKED_TABLES = ("users", "rooms", "events", "event_json", "room_memberships",
                          "current_state_events", "room_aliases", "local_media_repository")
COPY_BATCH = 5000



def _synapse_script(name: str) -> list[str]:
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [
        sys.executable, "-m", f"synapse._scripts.{name}"]


def _run_logged(command: list[str], log_path: Path, cwd: Path, what: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        result = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd,
                                check=False)
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise MigrationError(f"{what} failed (exit {result.returncode}); its output is in "
                             f"{log_path}. Last lines:\n{tail}")


def pending_background_updates(target: Target) -> int:
    with read_only(target.sqlite_path) as source:
        return int(source.execute("SELECT count(*) FROM background_updates").fetchone()[0])


def port_synapse(config: MercatoConfig, target: Target, log_path: Path,
                 say: Callable[[str], None]) -> None:
    """Run Synapse's synapse_port_db with a temporary config naming the PostgreSQL database."""
    from mercato_ops.render import render_all

    paths = render_all(config, "single")
    if pending := pending_background_updates(target):
        # synapse_port_db refuses while Synapse still has index builds and clean-ups to do;
        # Synapse would run them at its next start anyway, so run them now.
        say(f"Finishing Synapse's {pending} pending background updates on SQLite first")
        _run_logged([*_synapse_script("update_synapse_database"), "--database-config",
                     str(paths.homeserver_config), "--run-background-updates"],
                    log_path, paths.synapse_dir, "Synapse's update_synapse_database")
    homeserver = yaml.safe_load(paths.homeserver_config.read_text(encoding="utf-8"))
    homeserver["database"] = {"name": "psycopg2",
                              "args": {"dsn": target.url, "cp_min": 1, "cp_max": 5}}
    port_config = paths.synapse_dir / "port-to-postgres.yaml"
    fd = os.open(port_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(homeserver, out, sort_keys=False)
    try:
        _run_logged([*_synapse_script("synapse_port_db"), "--sqlite-database",
                     str(target.sqlite_path), "--postgres-config", str(port_config)],
                    log_path, paths.synapse_dir, "Synapse's synapse_port_db")
    finally:
        port_config.unlink(missing_ok=True)


async def verify_synapse(target: Target) -> dict[str, int]:
    """Row counts of the tables users would miss, equal on both sides."""
    conn = await connect_postgres(target.url)
    counts = {}
    try:
        with read_only(target.sqlite_path) as source:
            for table in SYNAPSE_CHECKED_TABLES:
                expected = sqlite_count(source, table)
                ported = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
                if ported != expected:
                    raise MigrationError(f"synapse.{table}: {expected} rows in SQLite but "
                                         f"{ported} on PostgreSQL after synapse_port_db")
                counts[table] = expected
    finally:
        await conn.close()
    return counts

