"""The `mercato` command: bring the network up, render configs, run one component, admin."""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mercato.config import (
    ConfigError,
    MercatoConfig,
    config_warnings,
    load_config,
    reachable_host,
    scale_profile,
)
from mercato.console import output_console
from mercato.logging import setup_logging
from mercato.matrix import paths

console = Console(stderr=True)
# The entry-point group where components register their `mercato` subcommands.
COMPONENT_COMMANDS = "mercato.cli"


class Context:
    def __init__(self, config_path: Path, profile: str) -> None:
        self.config_path = config_path
        self.profile = profile

    def config(self, *, create: bool = False) -> MercatoConfig:
        try:
            config = load_config(self.config_path, create=create)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
        return scale_profile(config) if self.profile == "scale" else config


def warn_about(config: MercatoConfig) -> None:
    """Say loudly, on stderr, which accepted settings put the network at risk."""
    for warning in config_warnings(config):
        console.print(f"[bold red]WARNING:[/] {warning}", highlight=False)


pass_context = click.make_pass_decorator(Context)


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default="mercato.yaml", envvar="MERCATO_CONFIG", show_default=True,
              help="The one configuration file of the network.")
@click.option("--profile", type=click.Choice(["single", "scale"]), default="single",
              envvar="MERCATO_PROFILE", show_default=True,
              help="single: one Synapse process on SQLite (the embedded default). scale: "
                   "Synapse workers on PostgreSQL with Redis, components on PostgreSQL.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, profile: str) -> None:
    """Mercato: a federated chat network for commerce, built on Matrix."""
    ctx.obj = Context(config_path, profile)


@cli.command()
@click.option("--profile", type=click.Choice(["single", "scale"]), default=None,
              help="Same as the global --profile (given here for `mercato up --profile scale`).")
@pass_context
def up(ctx: Context, profile: str | None) -> None:
    """Start Synapse, the commerce appservice, the contacts bridge and the shop bot."""
    from mercato_ops.supervisor import run_network

    if profile:
        ctx.profile = profile

    created = not ctx.config_path.exists()
    config = ctx.config(create=True)
    setup_logging(config.logging.level, config.logging.format, component="runner")
    warn_about(config)
    if created:
        console.print(f"Wrote {ctx.config_path} with fresh secrets (kept on later runs).")
    sys.exit(asyncio.run(run_network(config, ctx.config_path, ctx.profile)))


@cli.command()
@click.argument("component", type=click.Choice(["commerce", "contacts", "shopbot", "router"]))
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
        try:
            bridge = ContactsBridge(config)
        except ConfigError as e:  # a network connector's section of contacts.networks
            raise click.ClickException(str(e)) from None
        asyncio.run(bridge.run_until_stopped())
    elif component == "router":
        from mercato_ops.render import ScaleLayout
        from mercato_ops.router import Router

        layout = ScaleLayout.for_config(config)
        router = Router(f"http://127.0.0.1:{layout.main_port}",
                        f"http://127.0.0.1:{layout.reader.port}")
        asyncio.run(router.run(config.synapse.bind_address, config.synapse.port))
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
    warn_about(ctx.config())
    click.echo(f"{ctx.config_path} is valid.")


@config_group.command(name="render")
@pass_context
def config_render(ctx: Context) -> None:
    """Render Synapse's config and the appservice registrations into the data directory."""
    from mercato_ops.render import render_all

    config = ctx.config(create=True)
    warn_about(config)
    paths = render_all(config, ctx.profile)
    for path in (paths.homeserver_config, paths.log_config, paths.commerce_registration,
                 paths.contacts_registration):
        click.echo(f"wrote {path}")


@cli.group()
def admin() -> None:
    """Operator commands."""


def synapse_metrics_urls(config: MercatoConfig, profile: str) -> dict[str, str]:
    """Where each Synapse process serves Prometheus metrics (none when metrics are off)."""
    from mercato_ops.render import ScaleLayout

    port = config.synapse.metrics_port
    if port is None:
        return {}
    host = reachable_host(config.synapse.metrics_bind_address)
    urls = {"synapse metrics": paths.url(f"http://{host}:{port}", paths.synapse_path("metrics"))}
    if profile == "scale":
        for worker in ScaleLayout.for_config(config).workers:
            urls[f"synapse-{worker.name} metrics"] = paths.url(
                f"http://{host}:{worker.metrics_port}", paths.synapse_path("metrics"))
    return urls


@admin.command()
@pass_context
def status(ctx: Context) -> None:
    """Show whether each component answers its health check, and Synapse its metrics."""
    import aiohttp

    config = ctx.config()
    checks = {
        "synapse": f"{config.homeserver_url}/health",
        **synapse_metrics_urls(config, ctx.profile),
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
    output_console().print(table)
    if any(state != "up" for state in results.values()):
        sys.exit(1)


@admin.group()
def merchants() -> None:
    """Shops on this network: list, show, approve, reject, suspend, reinstate, verify."""


def _operator_call(config: MercatoConfig, method: str, path: str,
                   body: dict[str, object] | None = None) -> dict[str, Any]:
    """Call the commerce API with the operator token; exit with its error sentence."""
    import aiohttp

    url = f"http://{reachable_host(config.commerce.bind_address)}:{config.commerce.port}/api/v1"

    async def call() -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {config.commerce.operator_token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session, \
                session.request(method, url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    try:
        status, data = asyncio.run(call())
    except aiohttp.ClientError:
        raise click.ClickException(f"The commerce appservice does not answer at {url}; "
                                   "start the network with `make run`.") from None
    if status >= 400:
        raise click.ClickException(f"{data.get('error')} ({data.get('errcode')})")
    return data


@merchants.command(name="list")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "suspended"]),
              default="approved", show_default=True)
@pass_context
def merchants_list(ctx: Context, status: str) -> None:
    """List shops with a given status."""
    data = _operator_call(ctx.config(), "GET", f"/shops?status={status}")
    table = Table("slug", "name", "Matrix user", "status", "verified", "flagged")
    for shop in data["shops"]:
        table.add_row(shop["slug"], shop["name"], shop["user_id"], shop["status"],
                      "✓" if shop["verified"] else "", shop.get("flagged") or "")
    output_console().print(table)


@merchants.command(name="show")
@click.argument("slug")
@pass_context
def merchants_show(ctx: Context, slug: str) -> None:
    """Everything about one shop, with its latest audit entries."""
    import json

    config = ctx.config()
    shop = _operator_call(config, "GET", f"/shops/{slug}")
    audit = _operator_call(config, "GET", f"/shops/{slug}/audit?limit=20")
    click.echo(json.dumps({"shop": shop, "audit": audit["entries"]}, indent=2,
                          ensure_ascii=False))


def _decision(name: str, needs_reason: bool) -> None:
    # (click 8.5 ignores `required` when a default is given, even None.)
    reason_default: dict[str, Any] = {} if needs_reason else {"default": ""}

    @merchants.command(name=name, help=f"{name.capitalize()} a shop.")
    @click.argument("slug")
    @click.option("--reason", required=needs_reason, **reason_default,
                  help="Shown in the audit log (and to the shop).")
    @pass_context
    def decide(ctx: Context, slug: str, reason: str) -> None:
        shop = _operator_call(ctx.config(), "POST", f"/shops/{slug}/{name}", {"reason": reason})
        click.echo(f"{slug}: {shop['status']}")


for _name, _needs_reason in (("approve", False), ("reject", True), ("suspend", True),
                             ("reinstate", False)):
    _decision(_name, _needs_reason)


@admin.command()
@pass_context
def reports(ctx: Context) -> None:
    """Posts followers reported, newest first."""
    data = _operator_call(ctx.config(), "GET", "/reports")
    table = Table("id", "shop", "post", "reporter", "reason")
    for report in data["reports"]:
        table.add_row(str(report["id"]), report["merchant_slug"], report["event_id"],
                      report["reporter"], report["reason"])
    output_console().print(table)


@merchants.command(name="verify")
@click.argument("slug")
@pass_context
def merchants_verify(ctx: Context, slug: str) -> None:
    """Mark an approved shop verified (its profile, channel and the directory show it)."""
    shop = _operator_call(ctx.config(), "POST", f"/shops/{slug}/verify")
    click.echo(f"{slug}: verified for {shop['website']}")


def add_component_commands(group: click.Group) -> None:
    """Each component's own subcommands, declared in its package's `mercato.cli` entry points."""
    for entry_point in entry_points(group=COMPONENT_COMMANDS):
        group.add_command(entry_point.load(), name=entry_point.name)


def main() -> None:
    from mercato_ops.migrate_cli import migrate_to_postgres

    add_component_commands(cli)
    cli.add_command(migrate_to_postgres)
    cli()
