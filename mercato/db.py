"""The database layer: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) as an option.

Built on `mautrix.util.async_db`: `$1`-style parameters on both engines and
numbered upgrades, so a fresh install creates the latest schema and an old one
upgrades step by step. Each component owns one database.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mautrix.util.async_db import Database, Scheme, UpgradeTable

__all__ = ["Database", "Scheme", "UpgradeTable", "open_database", "is_postgres"]


def open_database(url: str, upgrade_table: UpgradeTable, name: str) -> Database:
    """Create (not yet start) the database of one component."""
    if url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:").removeprefix("//"))
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path.resolve()}"
        # WAL lets readers (tests, the CLI) look while the service writes.
        db_args = {"init_commands": ["PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=10000"]}
    else:
        db_args = {"min_size": 1, "max_size": 10}
    return Database.create(
        url,
        upgrade_table=upgrade_table,
        db_args=db_args,
        log=logging.getLogger(f"mercato.db.{name}"),
        owner_name=f"mercato-{name}",
    )


def is_postgres(db: Database) -> bool:
    return db.scheme in (Scheme.POSTGRES, Scheme.COCKROACH)
