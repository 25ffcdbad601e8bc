"""The `mercato` command: bring the network up, render configs, run one component, admin."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mercato.config import ConfigError, MercatoConfig, load_config
from mercato.logging import setup_logging

console = Console(stderr=True)


class Context:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path

    def config(self, *, create: bool = False) -> MercatoConfig:
        try:
            return load_config(self.config_path, create=create)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None


pass_context = click.make_pass_decorator(Context)


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default="mercato.yaml", envvar="MERCATO_CONFIG", show_default=True,
              help="The one configuration file of the network.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """Mercato: a federated chat network for commerce, built on Matrix."""
    ctx.obj = Context(config_path)


@cli.command()
@click.option("--profile", type=click.Choice(["single"]), default="single", show_default=True,
              help="single: one Synapse process on SQLite (the embedded default).")
@pass_context
def up(ctx: Context, profile: str) -> None:
    """Start Synapse, the commerce appservice, the contacts bridge and the shop bot."""
    from mercato.runner import run_network

    created = not ctx.config_path.exists()
    config = ctx.config(create=True)
    setup_logging(config.logging.level, config.logging.format, component="runner")
    if created:
        console.print(f"Wrote {ctx.config_path} with fresh secrets (kept on later runs).")
    sys.exit(asyncio.run(run_network(config, ctx.config_path)))


@cli.command()
@click.argument("component", type=click.Choice(["commerce", "contacts", "shopbot"]))
@pass_context
def run(ctx: Context, component: str) -> None:
    """Run one component in the foreground (`mercato up` does this for you)."""
    config = ctx.config()
    setup_logging(config.logging.level, config.logging.format, component=component)
    if component == "commerce":
        from appservices.commerce.service import CommerceAppService
        asyncio.run(CommerceAppService(config).run_until_stopped())
    elif component == "contacts":
        from bridges.contacts.service import ContactsBridge
        asyncio.run(ContactsBridge(config).run_until_stopped())
    else:
        from bots.shopbot.bot import ShopBot
        asyncio.run(ShopBot(config).run_until_stopped())


@cli.group(name="config")
def config_group() -> None:
    """Create, check and render the configuration."""


@config_group.command(name="init")
@pass_context
def config_init(ctx: Context) -> None:
    """Write mercato.yaml with safe defaults and random secrets, if it is missing."""
    if ctx.config_path.exists():
        ctx.config()  # still validate it
        click.echo(f"{ctx.config_path} already exists; it was kept.")
        return
    ctx.config(create=True)
    click.echo(f"Wrote {ctx.config_path}.")


@config_group.command(name="check")
@pass_context
def config_check(ctx: Context) -> None:
    """Validate mercato.yaml and say what is wrong, key by key."""
    ctx.config()
    click.echo(f"{ctx.config_path} is valid.")


@config_group.command(name="render")
@pass_context
def config_render(ctx: Context) -> None:
    """Render Synapse's config and the appservice registrations into the data directory."""
    from mercato.render import render_all

    paths = render_all(ctx.config(create=True))
    for path in (paths.homeserver_config, paths.log_config, paths.commerce_registration,
                 paths.contacts_registration):
        click.echo(f"wrote {path}")


@cli.group()
def admin() -> None:
    """Operator commands."""


@admin.command()
@pass_context
def status(ctx: Context) -> None:
    """Show whether each component answers its health check."""
    import aiohttp

    config = ctx.config()
    checks = {
        "synapse": f"{config.homeserver_url}/health",
        "commerce": f"http://127.0.0.1:{config.commerce.port}/health",
        "contacts": f"http://127.0.0.1:{config.contacts.port}/health",
        "shopbot": f"http://127.0.0.1:{config.shopbot.port}/health",
    }

    async def probe() -> dict[str, str]:
        results = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
            for name, url in checks.items():
                try:
                    async with session.get(url) as resp:
                        results[name] = "up" if resp.status == 200 else f"HTTP {resp.status}"
                except aiohttp.ClientError:
                    results[name] = "down"
        return results

    results = asyncio.run(probe())
    table = Table("component", "health", "url")
    for name, state in results.items():
        table.add_row(name, state, checks[name])
    Console().print(table)
    if any(state != "up" for state in results.values()):
        sys.exit(1)


@admin.group()
def merchants() -> None:
    """Shops on this network."""


@merchants.command(name="list")
@pass_context
def merchants_list(ctx: Context) -> None:
    """List shops with their status and followers."""
    from appservices.commerce.db import store
    from appservices.commerce.db.upgrade import upgrade_table
    from mercato.db import open_database

    config = ctx.config()

    async def rows() -> list[tuple[store.Merchant, int]]:
        db = open_database(config.database_url("commerce"), upgrade_table, "commerce")
        await db.start()
        try:
            return [(m, await store.follower_count(db, m.slug))
                    for m in await store.list_merchants(db)]
        finally:
            await db.stop()

    table = Table("slug", "name", "Matrix user", "status", "followers")
    for merchant, followers in asyncio.run(rows()):
        table.add_row(merchant.slug, merchant.name, merchant.mxid, merchant.status,
                      str(followers))
    Console().print(table)


def main() -> None:
    cli()
