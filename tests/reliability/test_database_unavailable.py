"""Which database errors mean "not now, try again" (503) rather than a bug (500)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from mercato.db import database_unavailable
from mercato_ops.testnet import free_port


async def test_a_refused_database_connection_is_unavailable_but_other_refusals_are_not() -> None:
    with pytest.raises(OSError) as refused:
        await asyncpg.connect(f"postgres://postgres@127.0.0.1:{free_port()}/x", timeout=5)
    assert database_unavailable(refused.value)
    # The same error from anything but the database driver (an HTTP call to Synapse) is not.
    assert not database_unavailable(ConnectionRefusedError(111, "Connection refused"))


def test_sqlite_lock_and_full_disk_are_unavailable_mistakes_are_not() -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as mistake:
        conn.execute("SELECT nothing FROM nowhere")
    assert not database_unavailable(mistake.value)
    assert database_unavailable(sqlite3.OperationalError("database is locked"))
    assert database_unavailable(sqlite3.OperationalError("database or disk is full"))
    assert not database_unavailable(sqlite3.IntegrityError("UNIQUE constraint failed"))


def test_postgres_shutdowns_and_lost_connections_are_unavailable() -> None:
    assert database_unavailable(asyncpg.exceptions.AdminShutdownError("terminating"))
    assert database_unavailable(asyncpg.exceptions.CannotConnectNowError("starting up"))
    assert database_unavailable(asyncpg.exceptions.ConnectionDoesNotExistError("lost"))
    assert database_unavailable(asyncpg.exceptions.DiskFullError("no space left"))
    assert database_unavailable(asyncpg.InterfaceError("cannot perform operation: "
                                                       "connection is closed"))
    assert not database_unavailable(asyncpg.exceptions.UniqueViolationError("duplicate"))
    assert not database_unavailable(ValueError("a bug"))
