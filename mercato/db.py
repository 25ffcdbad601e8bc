"""The database layer: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) as an option.

Built on `mautrix.util.async_db`: `$1`-style parameters on both engines and
numbered upgrades, so a fresh install creates the latest schema and an old one
upgrades step by step. Each component owns one database.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from mautrix.util.async_db import Connection, Database, Scheme, UpgradeTable
from mautrix.util.async_db.aiosqlite import in_transaction as sqlite_in_transaction

__all__ = ["Connection", "Database", "Scheme", "UpgradeTable", "open_database", "is_postgres",
           "database_unavailable", "durable_transaction", "register_upgrade",
           "transaction", "OutageLog"]

# An upgrade step: takes the connection (and optionally the scheme), may return the
# version it reached.
UpgradeStep = TypeVar("UpgradeStep", bound=Callable[..., Awaitable[int | None]])

# SQLite's words for a database that cannot take the request now (locked past the busy
# timeout, disk full), as opposed to a mistake in the request or the schema.
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked",
                       "database or disk is full", "disk i/o error",
                       "unable to open database file")


def open_database(url: str, upgrade_table: UpgradeTable, name: str, *,
                  max_connections: int = 10) -> Database:
    """Create (not yet start) the database of one component; on PostgreSQL its pool holds
    up to `max_connections` (`scale.connections_per_process`)."""
    db_args: dict[str, Any]
    if url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:").removeprefix("//"))
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path.resolve()}"
        # WAL lets readers (tests, the CLI) look while the service writes. A commit in
        # NORMAL mode survives the process being killed, not a power cut; what must
        # survive that too (a transaction Synapse was told is stored) is committed with
        # durable_transaction.
        db_args = {"init_commands": ["PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=10000",
                                     "PRAGMA synchronous=NORMAL"]}
    else:
        # mautrix exits the process on asyncpg's InternalClientError, which a database
        # restart raises on a connection cut mid-query: fail that query, not the component.
        db_args = {"min_size": 1, "max_size": max_connections, "meow_exit_on_ice": False}
    return Database.create(
        url,
        upgrade_table=upgrade_table,
        db_args=db_args,
        log=logging.getLogger(f"mercato.db.{name}"),
        owner_name=f"mercato-{name}",
    )


def register_upgrade(table: UpgradeTable,
                     description: str) -> Callable[[UpgradeStep], UpgradeStep]:
    """Decorator adding the next numbered upgrade step to `table`.

    `table.register(description=...)` does the same, but mautrix declares its result as
    a union of a step and a decorator, which a type checker cannot call.
    """
    def add_step(step: UpgradeStep) -> UpgradeStep:
        table.register(step, description=description)
        return step
    return add_step


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[Connection]:
    """A connection with a transaction open on it: committed when the block ends, rolled
    back when it raises (`db.acquire()` then `conn.transaction()`).

    On SQLite the transaction takes the write lock when it begins (BEGIN IMMEDIATE),
    waiting out another writer within the busy timeout: a transaction that read first
    and then wrote would fail at once if another connection (the inbox's intake has
    one of its own) committed in between.
    """
    # mautrix annotates acquire() as returning the connection it yields, so its type is lost.
    async with db.acquire() as conn:  # type: ignore[var-annotated]
        async with _begun(db, conn):
            yield conn


@asynccontextmanager
async def _begun(db: Database, conn: Any) -> AsyncIterator[None]:
    if is_postgres(db) or sqlite_in_transaction.get():
        async with conn.transaction():
            yield
        return
    await conn.execute("BEGIN IMMEDIATE")
    token = sqlite_in_transaction.set(True)  # nested transaction() blocks join this one
    try:
        yield
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    else:
        await conn.execute("COMMIT")
    finally:
        sqlite_in_transaction.reset(token)


@asynccontextmanager
async def durable_transaction(db: Database) -> AsyncIterator[Connection]:
    """As `transaction`, but on SQLite the commit is flushed to disk before the block
    returns (synchronous=FULL for this commit only), so it survives a power cut too.
    PostgreSQL's commits always are."""
    if is_postgres(db):
        async with transaction(db) as conn:
            yield conn
        return
    async with db.acquire() as conn:  # type: ignore[var-annotated]
        await conn.execute("PRAGMA synchronous=FULL")
        try:
            async with _begun(db, conn):
                yield conn
        finally:
            await conn.execute("PRAGMA synchronous=NORMAL")


def is_postgres(db: Database) -> bool:
    return db.scheme in (Scheme.POSTGRES, Scheme.COCKROACH)


def database_unavailable(error: BaseException) -> bool:
    """True when `error` says the database could not be reached or used just now (a
    restart, an outage, a lock held too long, a full disk): the request may succeed
    if tried again, and nothing it did was committed."""
    if isinstance(error, asyncpg.PostgresConnectionError | asyncpg.InternalClientError |
                  asyncpg.exceptions.OperatorInterventionError |
                  asyncpg.exceptions.InsufficientResourcesError):
        return True
    if isinstance(error, asyncpg.InterfaceError):
        return "connection" in str(error) and "closed" in str(error)
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(words in message for words in _SQLITE_UNAVAILABLE)
    if isinstance(error, ConnectionError | TimeoutError):
        # Refused or reset connections are the database's only when its driver raised them
        # (an HTTP call to Synapse fails with the same errors).
        frames = error.__traceback__
        while frames is not None:
            if "/asyncpg/" in frames.tb_frame.f_code.co_filename:
                return True
            frames = frames.tb_next
    return False


async def create_database(admin: asyncpg.Connection, name: str) -> None:
    """Create a PostgreSQL database as Synapse requires it (UTF-8, C collation); Mercato's
    components do not mind the C collation, so every database is made the same way."""
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 '
                        "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")


class OutageLog:
    """How a background loop reports that its database is unavailable: one warning when
    an outage starts (no traceback: nothing is wrong with the code) and one line when it
    ends, instead of a traceback every pass. Other errors are left to the caller."""

    def __init__(self, log: Any, name: str, **context: Any) -> None:
        self.log, self.context = log, context
        self._down, self._back = f"{name}.database_unavailable", f"{name}.database_back"
        self.since: float | None = None
        self.failures = 0

    def failed(self, error: BaseException) -> bool:
        """True if `error` is the database being unavailable (then it is reported here)."""
        if not database_unavailable(error):
            return False
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning(self._down, **self.context,
                             error=f"{type(error).__name__}: {error}",
                             note="retrying every few seconds; logged once per outage")
        return True

    def succeeded(self) -> None:
        if self.since is not None:
            self.log.warning(self._back, **self.context,
                             after_s=round(time.monotonic() - self.since, 1),
                             failed_passes=self.failures)
            self.since, self.failures = None, 0
