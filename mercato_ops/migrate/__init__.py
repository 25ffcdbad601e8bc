"""Move a stopped SQLite install to PostgreSQL: Synapse's database and Mercato's own.

Synapse's database is ported by Synapse's own `synapse_port_db`. Each Mercato
component's database gets its schema from the component's numbered upgrades (so it
is exactly what a fresh PostgreSQL install would have), then its rows, table by
table in foreign-key order, in one transaction per database, with sequences moved
past the copied IDs and row counts checked before the commit. Only when every
database is copied is mercato.yaml rewritten (the old file is kept beside it). The
SQLite files are only read (Synapse's pending background updates aside, which its port
script requires done), so going back is restoring the old mercato.yaml.

Here is the whole move, in order; `plan` says what moves and checks it may, `databases`
opens both ends, `synapse` and `components` copy each kind of database.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from mercato.config import ConfigError, MercatoConfig, write_config
from mercato_ops.migrate.components import (
    copy_component,
    known_upgrade_tables,
    sqlite_upgrade_tables,
)
from mercato_ops.migrate.databases import drop_databases, prepare_databases
from mercato_ops.migrate.plan import (
    MigrationError,
    backup_path,
    check_stopped,
    migrated_config,
    plan,
)
from mercato_ops.migrate.synapse import port_synapse, verify_synapse

__all__ = ["MigrationError", "Report", "migrate"]


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
