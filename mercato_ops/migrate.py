"""Move a stopped SQLite install to PostgreSQL: Synapse's database and Mercato's own.

Synapse's database is ported by Synapse's own `synapse_port_db`. Each Mercato
component's database gets its schema from the component's numbered upgrades (so it
is exactly what a fresh PostgreSQL install would have), then its rows, table by
table in foreign-key order, in one transaction per database, with sequences moved
past the copied IDs and row counts checked before the commit. Only when every
database is copied is mercato.yaml rewritten (the old file is kept beside it). The
SQLite files are only read (Synapse's pending background updates aside, which its port
script requires done), so going back is restoring the old mercato.yaml.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pkgutil
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from mautrix.util.async_db import UpgradeTable

from mercato.config import ConfigError, MercatoConfig, parse_config, reachable_host, write_config

COMPONENTS = ("commerce", "contacts")
COMPONENT_PACKAGES = {"commerce": "appservices.commerce", "contacts": "bridges.contacts"}
# Written by mautrix when the schema is created (like the version tables), so not copied.
MAUTRIX_OWNER_TABLE = "database_owner"
# Synapse tables whose row counts are compared after the port: what users would miss.
SYNAPSE_CHECKED_TABLES = ("users", "rooms", "events", "event_json", "room_memberships",
                          "current_state_events", "room_aliases", "local_media_repository")
COPY_BATCH = 5000


class MigrationError(Exception):
    """The migration cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """One SQLite database and the PostgreSQL database it moves to."""

    part: str  # "synapse", "commerce" or "contacts"
    sqlite_path: Path
    database: str  # the PostgreSQL database's name
    url: str


# -- pure parts ---------------------------------------------------------------------------


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


def dependency_order(tables: Iterable[str],
                     references: Iterable[tuple[str, str]]) -> list[str]:
    """Tables ordered so each comes after the tables it references (child, parent)."""
    remaining = sorted(set(tables))
    parents: dict[str, set[str]] = {table: set() for table in remaining}
    for child, parent in references:
        if child != parent and child in parents and parent in parents:
            parents[child].add(parent)
    ordered: list[str] = []
    while remaining:
        ready = [t for t in remaining if not parents[t] - set(ordered)]
        if not ready:
            raise MigrationError("the tables " + ", ".join(remaining) + " reference each "
                                 "other in a cycle; they cannot be copied in order")
        ordered += ready
        remaining = [t for t in remaining if t not in ready]
    return ordered


_INTEGER_TYPES = ("smallint", "integer", "bigint")
# An enum (mautrix's membership type) is written as its label, like text.
_TEXT_TYPES = ("text", "character varying", "character", "enum")


def to_postgres(value: Any, pg_type: str) -> Any:
    """A value read from SQLite, as PostgreSQL's column type takes it (ValueError if not)."""
    if value is None:
        return None
    if pg_type == "boolean":
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("0", "1", "t", "f", "true", "false"):
            return value.lower() in ("1", "t", "true")
    elif pg_type in _INTEGER_TYPES:
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif pg_type in _TEXT_TYPES:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, str | int | float):
            return str(value)
    elif pg_type == "bytea":
        if isinstance(value, bytes | memoryview):
            return bytes(value)
        if isinstance(value, str):
            return value.encode("utf-8")
    elif pg_type in ("double precision", "real"):
        if isinstance(value, int | float | str):
            return float(value)
    elif pg_type == "numeric":
        if isinstance(value, int | float | str):
            return Decimal(str(value))
    elif pg_type in ("json", "jsonb"):
        if isinstance(value, str):
            return value
    else:
        raise ValueError(f"PostgreSQL type {pg_type} is not supported by the migration")
    raise ValueError(f"{value!r} does not fit a {pg_type} column")


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


# -- checks -------------------------------------------------------------------------------


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


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """The SQLite file opened read-only: the migration never changes it."""
    if not path.exists():
        raise MigrationError(f"{path} does not exist: start the network once before "
                             "migrating it.")
    wal = path.with_name(path.name + "-wal")
    # Without a write-ahead log to read, `immutable` leaves no -shm/-wal files behind; with
    # one (a component that did not stop cleanly), its commits must be read too.
    unlogged = not wal.exists() or wal.stat().st_size == 0
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro"
                           f"{'&immutable=1' if unlogged else ''}", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def _sqlite_tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%'").fetchall()
    return {name for (name,) in rows}


def _sqlite_count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


# -- PostgreSQL -----------------------------------------------------------------------------


async def _connect(url: str) -> Any:
    import asyncpg

    try:
        return await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as e:
        raise MigrationError(f"cannot connect to PostgreSQL at {url} ({e})") from None


async def prepare_databases(server: str, targets: list[Target], replace: bool) -> list[str]:
    """Create each target database (C collation, as Synapse requires). An existing one must
    be empty, or is dropped first with `replace`. Returns the databases created."""
    from mercato.db import create_database  # mautrix only after logging is set up

    admin = await _connect(f"{server.rstrip('/')}/postgres")
    created: list[str] = []
    try:
        existing = {r["datname"] for r in await admin.fetch("SELECT datname FROM pg_database")}
        in_use = []
        for target in targets:
            if target.database in existing and not replace:
                conn = await _connect(target.url)
                try:
                    tables = await conn.fetchval(
                        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                finally:
                    await conn.close()
                if tables:
                    in_use.append(target.database)
        if in_use:
            raise MigrationError(
                f"the database{'s' if len(in_use) > 1 else ''} {', '.join(in_use)} on {server} "
                "already hold tables (an earlier migration, or another network?). Nothing was "
                "changed. Drop them (`dropdb NAME`), choose another --database-prefix, or run "
                "again with --replace to drop and recreate them.")
        for target in targets:
            if target.database in existing and replace:
                await admin.execute(f'DROP DATABASE "{target.database}" WITH (FORCE)')
                existing.discard(target.database)
            if target.database not in existing:
                await create_database(admin, target.database)
                created.append(target.database)
    finally:
        await admin.close()
    return created


async def drop_databases(server: str, names: Iterable[str]) -> None:
    admin = await _connect(f"{server.rstrip('/')}/postgres")
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# -- Mercato's components -------------------------------------------------------------------


def known_upgrade_tables(component: str) -> dict[str, UpgradeTable]:
    """Every numbered-upgrade table the component's code defines (its own, its network
    connectors', the shared inbox and state store), by the name of its version table."""
    package = importlib.import_module(COMPONENT_PACKAGES[component])
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        importlib.import_module(module.name)
    importlib.import_module("mercato.matrix.appservice")
    return {table.version_table_name: table for table in gc.get_objects()
            if isinstance(table, UpgradeTable)}


def sqlite_upgrade_tables(path: Path, known: Mapping[str, UpgradeTable]) -> list[UpgradeTable]:
    """The upgrade tables that built the SQLite database, in the order they first ran; each
    must be at the version this Mercato writes."""
    tables = []
    with _read_only(path) as conn:
        names = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]
        for name in names:
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')]
            if columns != ["version"]:
                continue
            if name not in known:
                raise MigrationError(f"{path} holds tables of '{name}', which this version of "
                                     "Mercato does not know; migrate with the version that "
                                     "created them.")
            row = conn.execute(f'SELECT version FROM "{name}"').fetchone()
            version, latest = (row[0] if row else 0), len(known[name].upgrades)
            if version != latest:
                raise MigrationError(
                    f"{path} is at schema version {version} of {name}, this Mercato writes "
                    f"version {latest}. Start the network once on SQLite with this version of "
                    "Mercato (`mercato up`, then stop it), then migrate.")
            tables.append(known[name])
    return tables


async def create_schema(url: str, component: str, tables: Iterable[UpgradeTable]) -> None:
    """The component's schema, built by its own upgrades, as its start-up would."""
    from mercato.db import open_database

    db = open_database(url, UpgradeTable(), component)
    await db.start()  # claims the database for the component, as the service does
    try:
        for table in tables:
            await table.upgrade(db)
    finally:
        await db.stop()


async def copy_component(target: Target, tables: list[UpgradeTable]) -> dict[str, int]:
    """Copy every row of a component's SQLite database, built by `tables`, in one
    transaction; rows per table."""
    await create_schema(target.url, target.part, tables)
    skipped = {*(t.version_table_name for t in tables), MAUTRIX_OWNER_TABLE}
    conn = await _connect(target.url)
    try:
        with _read_only(target.sqlite_path) as source:
            return await _copy_rows(target, source, conn, skipped)
    finally:
        await conn.close()


async def _copy_rows(target: Target, source: sqlite3.Connection, conn: Any,
                     skipped: set[str]) -> dict[str, int]:
    columns: dict[str, list[tuple[str, str]]] = {}
    for row in await conn.fetch(
            "SELECT c.table_name, c.column_name, CASE WHEN t.typtype = 'e' THEN 'enum' "
            "ELSE c.data_type END AS data_type FROM information_schema.columns c "
            "JOIN pg_type t ON t.typname = c.udt_name WHERE c.table_schema = 'public' "
            "ORDER BY c.table_name, c.ordinal_position"):
        columns.setdefault(row["table_name"], []).append((row["column_name"], row["data_type"]))
    pg_tables = set(columns) - skipped
    sqlite_tables = _sqlite_tables(source) - skipped
    if pg_tables != sqlite_tables:
        raise MigrationError(
            f"the {target.part} database's tables differ between SQLite and the schema this "
            f"Mercato creates (only in SQLite: {sorted(sqlite_tables - pg_tables) or 'none'}; "
            f"only on PostgreSQL: {sorted(pg_tables - sqlite_tables) or 'none'}); nothing "
            "was copied")
    references = [(r["child"], r["parent"]) for r in await conn.fetch(
        "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent "
        "FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace")]
    counts: dict[str, int] = {}
    async with conn.transaction():
        for table in dependency_order(pg_tables, references):
            counts[table] = await _copy_table(target, source, conn, table, columns[table])
        for row in await conn.fetch(
                "SELECT table_name, column_name, pg_get_serial_sequence("
                "quote_ident(table_name), column_name) AS seq FROM information_schema.columns "
                "WHERE table_schema = 'public'"):
            if row["seq"] and row["table_name"] in counts:
                # The next ID follows the highest copied one, so new rows never collide.
                await conn.execute(
                    f'SELECT setval($1, COALESCE((SELECT max("{row["column_name"]}") '
                    f'FROM "{row["table_name"]}"), 0) + 1, false)', row["seq"])
        for table, expected in counts.items():
            copied = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
            if copied != expected:
                raise MigrationError(f"{target.part}.{table}: {expected} rows in SQLite but "
                                     f"{copied} on PostgreSQL; nothing was kept")
    return counts


async def _copy_table(target: Target, source: sqlite3.Connection, conn: Any, table: str,
                      columns: list[tuple[str, str]]) -> int:
    names = [name for name, _ in columns]
    cursor = source.execute(
        "SELECT " + ", ".join(f'"{name}"' for name in names) + f' FROM "{table}"')
    copied = 0
    while batch := cursor.fetchmany(COPY_BATCH):
        records = []
        for row in batch:
            try:
                records.append(tuple(to_postgres(value, pg_type)
                                     for value, (_, pg_type) in zip(row, columns, strict=True)))
            except ValueError as e:
                raise MigrationError(f"{target.part}.{table}, row {copied + len(records) + 1}: "
                                     f"{e}; nothing was copied") from None
        await conn.copy_records_to_table(table, records=records, columns=names)
        copied += len(records)
    expected = _sqlite_count(source, table)
    if copied != expected:
        raise MigrationError(f"{target.part}.{table}: read {copied} of {expected} rows")
    return copied


# -- Synapse ----------------------------------------------------------------------------------


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
    with _read_only(target.sqlite_path) as source:
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
    conn = await _connect(target.url)
    counts = {}
    try:
        with _read_only(target.sqlite_path) as source:
            for table in SYNAPSE_CHECKED_TABLES:
                expected = _sqlite_count(source, table)
                ported = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
                if ported != expected:
                    raise MigrationError(f"synapse.{table}: {expected} rows in SQLite but "
                                         f"{ported} on PostgreSQL after synapse_port_db")
                counts[table] = expected
    finally:
        await conn.close()
    return counts


# -- the whole move ----------------------------------------------------------------------------


@dataclass
class Report:
    rows: dict[str, dict[str, int]]
    backup: Path


async def migrate(config: MercatoConfig, config_path: Path, server: str, prefix: str, *,
                  replace: bool = False, say: Callable[[str], None] = print) -> Report:
    """Move every SQLite database of a stopped network to PostgreSQL, then point
    mercato.yaml at them. On failure the databases this run created are dropped and
    mercato.yaml is unchanged."""
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    targets = plan(config, server, prefix)
    if not targets:
        raise MigrationError(f"{config_path} already names PostgreSQL for Synapse, commerce "
                             "and contacts: there is nothing on SQLite to migrate.")
    try:
        after = migrated_config(raw, config_path.parent.resolve(), server, prefix, targets)
    except ConfigError as e:
        raise MigrationError(str(e)) from None
    for target in targets:
        if not target.sqlite_path.exists():
            raise MigrationError(f"{target.sqlite_path} ({target.part}) does not exist: start "
                                 "the network once before migrating it.")
    check_stopped(config)
    # Each component's schema versions are checked before anything is created.
    schemas = {t.part: sqlite_upgrade_tables(t.sqlite_path, known_upgrade_tables(t.part))
               for t in targets if t.part != "synapse"}
    created = await prepare_databases(server, targets, replace)
    say(f"Moving to {', '.join(t.database for t in targets)} on {server}")
    rows: dict[str, dict[str, int]] = {}
    try:
        for target in targets:
            if target.part == "synapse":
                log_path = config.data_path / "logs" / "synapse_port_db.out"
                say(f"Porting Synapse's database with synapse_port_db (output: {log_path})")
                log_path.unlink(missing_ok=True)
                port_synapse(config, target, log_path, say)
                rows["synapse"] = await verify_synapse(target)
            else:
                say(f"Copying the {target.part} database")
                rows[target.part] = await copy_component(target, schemas[target.part])
    except BaseException:
        # A half-filled database would be refused by the next run: drop what this run made.
        with contextlib.suppress(MigrationError):  # the first error is the one to report
            await drop_databases(server, created)
        raise
    backup = backup_path(config_path, datetime.now())
    shutil.copy2(config_path, backup)
    write_config(after, config_path)
    return Report(rows, backup)
