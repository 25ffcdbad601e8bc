"""`mercato migrate-to-postgres`: move a stopped SQLite network to PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from pydantic import ValidationError
from rich.table import Table

from mercato.config import ConfigError, ScaleConfig, load_config
from mercato.console import output_console


@click.command(name="migrate-to-postgres")
@click.option("--postgres", "server", default=None, metavar="URL",
              help="The PostgreSQL server, postgres://user@host:port (default: scale.postgres "
                   "in mercato.yaml). The user must be allowed to create databases.")
@click.option("--database-prefix", "prefix", default=None,
              help="Names of the new databases: <prefix>synapse, <prefix>commerce, "
                   "<prefix>contacts (default: scale.database_prefix, 'mercato_').")
@click.option("--replace", is_flag=True,
              help="Drop and recreate target databases that already hold tables (for "
                   "example those of an earlier migration you rolled back).")
@click.pass_context
def migrate_to_postgres(ctx: click.Context, server: str | None, prefix: str | None,
                        replace: bool) -> None:
    """Move a stopped network's SQLite databases (Synapse's and Mercato's) to PostgreSQL.

    Stop the network first. The SQLite files are only read; mercato.yaml is rewritten
    to name the new databases once everything is copied, and the old file is kept beside
    it (restore it to go back to SQLite). Then start with `mercato up`.
    """
    from mercato.logging import setup_logging

    config_path: Path = ctx.obj.config_path
    try:
        # The file as it is, whatever --profile says: the profile would hide its SQLite parts.
        config = load_config(config_path)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    setup_logging("WARNING", "console", component="migrate")
    # After setup_logging, as in `mercato run`: mautrix's database layer needs its own
    # logger class, which importing it installs.
    from mercato_ops.migrate import MigrationError, migrate

    server = server or config.scale.postgres
    prefix = prefix or config.scale.database_prefix
    try:
        ScaleConfig(postgres=server, database_prefix=prefix)
    except ValidationError as e:
        error = e.errors()[0]
        option = "--postgres" if error["loc"][0] == "postgres" else "--database-prefix"
        raise click.BadParameter(error["msg"].removeprefix("Value error, "),
                                 param_hint=option) from None
    try:
        report = asyncio.run(migrate(config, config_path, server, prefix, replace=replace,
                                     say=click.echo))
    except MigrationError as e:
        raise click.ClickException(f"{e}\nmercato.yaml was not changed.") from None
    table = Table("database", "table", "rows")
    for part, rows in report.rows.items():
        for name, count in rows.items():
            table.add_row(part, name, str(count))
    output_console().print(table)
    click.echo(f"\nDone. {config_path} now names the PostgreSQL databases. Start the network "
               "with `mercato up` (one Synapse process on PostgreSQL) or `mercato up --profile "
               f"scale` (Synapse workers).\nThe SQLite databases are still in place: to go "
               f"back, stop the network and put {report.backup} back as {config_path}.")
