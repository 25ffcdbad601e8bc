"""Copying a Mercato component's database: its schema built by the component's own
numbered upgrades (so it is exactly what a fresh PostgreSQL install would have), then its
rows, table by table in foreign-key order, in one transaction, with sequences moved past
the copied IDs and row counts checked before the commit."""

from __future__ import annotations

import gc
import importlib
import pkgutil
import sqlite3
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from mautrix.util.async_db import UpgradeTable

from mercato_ops.migrate.databases import (
    connect_postgres,
    read_only,
    sqlite_count,
    sqlite_table_names,
)
from mercato_ops.migrate.plan import MigrationError, Target

COMPONENT_PACKAGES = {"commerce": "appservices.commerce", "contacts": "bridges.contacts"}
# Written by mautrix when the schema is created (like the version tables), so not copied.
MAUTRIX_OWNER_TABLE = "database_owner"
COPY_BATCH = 5000



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
    with read_only(path) as conn:
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
    conn = await connect_postgres(target.url)
    try:
        with read_only(target.sqlite_path) as source:
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
    sqlite_tables = sqlite_table_names(source) - skipped
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
    expected = sqlite_count(source, table)
    if copied != expected:
        raise MigrationError(f"{target.part}.{table}: read {copied} of {expected} rows")
    return copied

