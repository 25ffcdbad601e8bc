"""Both ends of a migration: SQLite files opened read-only (the migration never changes
them) and the PostgreSQL databases it creates, refuses to overwrite, or drops on failure."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mercato_ops.migrate.plan import MigrationError, Target


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
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


def sqlite_table_names(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%'").fetchall()
    return {name for (name,) in rows}


def sqlite_count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])



async def connect_postgres(url: str) -> Any:
    import asyncpg

    try:
        return await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as e:
        raise MigrationError(f"cannot connect to PostgreSQL at {url} ({e})") from None


async def prepare_databases(server: str, targets: list[Target], replace: bool) -> list[str]:
    """Create each target database (C collation, as Synapse requires). An existing one must
    be empty, or is dropped first with `replace`. Returns the databases created."""
    from mercato.db import create_database  # mautrix only after logging is set up

    admin = await connect_postgres(f"{server.rstrip('/')}/postgres")
    created: list[str] = []
    try:
        existing = {r["datname"] for r in await admin.fetch("SELECT datname FROM pg_database")}
        in_use = []
        for target in targets:
            if target.database in existing and not replace:
                conn = await connect_postgres(target.url)
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
    admin = await connect_postgres(f"{server.rstrip('/')}/postgres")
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()

