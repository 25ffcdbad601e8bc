"""`mercato up`: start Synapse and every Mercato component, seed the demo, and wait.

Each component is a child process; the supervisor waits for each /health before
starting the next, stops them all (newest first) on Ctrl-C or SIGTERM, and stops
the whole network if one of them dies, so nothing half-runs unnoticed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from mercato.config import MercatoConfig, reachable_host
from mercato.logging import get_logger
from mercato.matrix.admin import register_user
from mercato_ops.demo_shop import DemoCatalog, DemoSeedError, seed_demo_shop
from mercato_ops.render import RenderedPaths, ScaleLayout, render_all

log = get_logger(__name__)

START_TIMEOUT = 180.0
STOP_TIMEOUT = 15.0


class StartupError(Exception):
    pass


@dataclass
class Child:
    name: str
    argv: list[str]
    health_url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


def _children(config: MercatoConfig, config_path: Path, paths: RenderedPaths,
              profile: str) -> list[Child]:
    py = sys.executable
    run = [py, "-m", "mercato_ops", "--config", str(config_path), "--profile", profile, "run"]

    local = reachable_host
    public_health = f"http://{local(config.synapse.bind_address)}:{config.synapse.port}/health"
    if profile == "scale":
        layout = ScaleLayout.for_config(config)
        synapse = [
            Child("synapse", [py, "-m", "synapse.app.homeserver", "-c",
                              str(paths.homeserver_config)],
                  f"http://127.0.0.1:{layout.main_port}/health"),
            *(Child(f"synapse-{w.name}", [py, "-m", "synapse.app.generic_worker", "-c",
                                          str(paths.homeserver_config), "-c",
                                          str(w.config_path(paths.synapse_dir))],
                    f"http://127.0.0.1:{w.port}/health") for w in layout.workers),
            Child("router", [*run, "router"], public_health),
        ]
    else:
        synapse = [Child("synapse", [py, "-m", "synapse.app.homeserver", "-c",
                                     str(paths.homeserver_config)], public_health)]
    return [
        *synapse,
        Child("commerce", [*run, "commerce"],
              f"http://{local(config.commerce.bind_address)}:{config.commerce.port}/health"),
        Child("contacts", [*run, "contacts"],
              f"http://{local(config.contacts.bind_address)}:{config.contacts.port}/health"),
        Child("shopbot", [*run, "shopbot"],
              f"http://{local(config.shopbot.bind_address)}:{config.shopbot.port}/health"),
    ]


def demo_summary(config: MercatoConfig,
                 catalog: DemoCatalog | None = None) -> dict[str, object]:
    """What data/demo.json holds: enough for a person or a script to use the demo."""
    demo = config.demo
    server = config.server_name
    return {
        "homeserver_url": config.client_baseurl,
        "server_name": server,
        "buyer": {"user_id": config.user_id(demo.buyer.localpart),
                  "password": demo.buyer.password},
        "merchant": {"user_id": config.user_id(demo.merchant.localpart),
                     "password": demo.merchant.password},
        "shop": {"slug": demo.shop_slug, "name": demo.shop_name,
                 "user_id": config.user_id(config.commerce.user_prefix + demo.shop_slug),
                 "api_key": demo.api_key,
                 "api_url": f"http://localhost:{config.commerce.port}/api/v1"},
        "channel_alias": f"#{config.commerce.user_prefix}{demo.shop_slug}:{server}",
        "storefront_url": f"{config.commerce.site_url}/s/{demo.shop_slug}",
        "console_url": f"{config.commerce.site_url}/console/",
        "shopbot": config.user_id(config.shopbot.localpart),
        "contacts_bot": config.user_id(config.contacts.bot_localpart),
        **(catalog.summary() if catalog is not None else {}),
    }


def login_instructions(summary: dict[str, object]) -> str:
    buyer = summary["buyer"]
    merchant = summary["merchant"]
    assert isinstance(buyer, dict) and isinstance(merchant, dict)
    return "\n".join([
        "",
        "Mercato is running.",
        "",
        f"  Homeserver:  {summary['homeserver_url']}",
        "  Open any Matrix client (Element, FluffyChat, nheko, …), choose",
        "  'other homeserver', enter the homeserver URL above, then sign in as:",
        f"    buyer     {buyer['user_id']}   password {buyer['password']}",
        f"    merchant  {merchant['user_id']}   password {merchant['password']}",
        "",
        f"  Join the demo shop's channel: {summary['channel_alias']}",
        f"  Talk to the shop bot:         {summary['shopbot']} (say 'help')",
        *ordering_lines(summary),
        "",
        f"  The shop on the web:  {summary['storefront_url']}",
        f"  Merchant console:     {summary['console_url']} (sign in as the merchant)",
        "  Accounts, API key and aliases for scripts: data/demo.json",
        "",
        "  Press Ctrl-C to stop everything.",
        "",
    ])


def ordering_lines(summary: dict[str, object]) -> list[str]:
    """How the demo buyer orders, once the demo catalog is in the channel."""
    products = summary.get("products")
    if not isinstance(products, list) or not products:
        return []
    skus = ", ".join(str(p["sku"]) for p in products)
    return [
        "",
        "  To order, as the buyer: join the channel and react 🛒 to a product card;",
        "  the shop opens a chat with you: say 'checkout' there and answer its questions.",
        "  Or tell the shop bot 'buy demo <sku>', then 'checkout demo'.",
        f"  Products: {skus}",
        "  React 🎟️ to the coupon post for a code to give at checkout.",
    ]


class Network:
    def __init__(self, config: MercatoConfig, config_path: Path, profile: str = "single") -> None:
        self.config = config
        self.profile = profile
        self.config_path = config_path.resolve()
        self.paths = render_all(config, profile)
        self.children = _children(config, self.config_path, self.paths, profile)
        self.restarts: dict[str, int] = {}
        self.demo_catalog: DemoCatalog | None = None
        self._stopping = False

    def _spawn(self, child: Child) -> None:
        child.log_path = self.paths.log_dir / f"{child.name}.out"
        out = open(child.log_path, "ab")
        env = {**os.environ, **child.extra_env, "PYTHONUNBUFFERED": "1"}
        child.process = subprocess.Popen(child.argv, stdout=out, stderr=subprocess.STDOUT,
                                         env=env, cwd=self.paths.data_dir,
                                         start_new_session=True)
        out.close()
        log.info("network.started", component=child.name, pid=child.process.pid)

    def _tail(self, child: Child, lines: int = 25) -> str:
        if child.log_path is None or not child.log_path.exists():
            return ""
        return "\n".join(child.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def _wait_healthy(self, session: aiohttp.ClientSession, child: Child) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert child.process is not None
            if child.process.poll() is not None:
                raise StartupError(f"{child.name} exited with code {child.process.returncode} "
                                   f"while starting. Last lines of {child.log_path}:\n"
                                   f"{self._tail(child)}")
            try:
                async with session.get(child.health_url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
        raise StartupError(f"{child.name} was not healthy at {child.health_url} after "
                           f"{START_TIMEOUT:.0f} s; see {child.log_path}")

    async def _create_accounts(self, session: aiohttp.ClientSession) -> None:
        cfg = self.config
        secret = cfg.synapse.registration_shared_secret
        accounts = [(cfg.shopbot.localpart, cfg.shopbot.password, "Mercato shop bot")]
        if cfg.demo.enabled:
            accounts += [(cfg.demo.buyer.localpart, cfg.demo.buyer.password, "Demo Buyer"),
                         (cfg.demo.merchant.localpart, cfg.demo.merchant.password,
                          "Demo Merchant")]
        for localpart, password, name in accounts:
            await register_user(session, cfg.homeserver_url, secret, localpart, password,
                                displayname=name)

    def write_demo_file(self) -> Path:
        path = self.paths.data_dir / "demo.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(demo_summary(self.config, self.demo_catalog), out, indent=2)
        os.replace(tmp, path)
        return path

    async def start(self) -> None:
        if self.profile == "scale":
            await ensure_databases(self.config)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for child in self.children:
                self._spawn(child)
                await self._wait_healthy(session, child)
                log.info("network.healthy", component=child.name)
                if child.name == ("router" if self.profile == "scale" else "synapse"):
                    await self._create_accounts(session)
        if self.config.demo.enabled:
            await self._seed_demo_catalog()

    async def _seed_demo_catalog(self) -> None:
        """The demo catalog, cards and coupon; the network runs on without them if refused."""
        try:
            self.demo_catalog = await seed_demo_shop(self.config, self.paths.data_dir)
        except (DemoSeedError, aiohttp.ClientError, TimeoutError) as e:
            log.error("network.demo_catalog_failed", error=str(e))
            print(f"\nThe demo shop's catalog could not be added: {e}", file=sys.stderr)

    def stop(self) -> None:
        """Stop children newest first: SIGTERM, then SIGKILL after a grace period."""
        self._stopping = True
        for child in reversed(self.children):
            proc = child.process
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("network.kill", component=child.name)
                proc.kill()
                proc.wait()
            log.info("network.stopped", component=child.name, code=proc.returncode)

    def dead_child(self) -> Child | None:
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None


async def ensure_databases(config: MercatoConfig) -> None:
    """Create the scale profile's databases on its PostgreSQL server when missing."""
    import asyncpg

    from mercato.db import create_database

    server, prefix = config.scale.postgres, config.scale.database_prefix
    try:
        admin = await asyncpg.connect(f"{server}/postgres", timeout=10)
    except (OSError, asyncpg.PostgresError) as e:
        raise StartupError(f"PostgreSQL at {server} is not reachable ({e}); the scale "
                           "profile needs it (scale.postgres in mercato.yaml).") from None
    try:
        existing = {r["datname"] for r in await admin.fetch("SELECT datname FROM pg_database")}
        for name in ("synapse", "commerce", "contacts"):
            database = f"{prefix}{name}"
            if database in existing:
                continue
            await create_database(admin, database)
            log.info("network.database_created", database=database)
    finally:
        await admin.close()


async def run_network(config: MercatoConfig, config_path: Path, profile: str = "single") -> int:
    network = Network(config, config_path, profile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        started = asyncio.create_task(network.start())
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({started, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            started.cancel()
            await asyncio.gather(started, return_exceptions=True)
            return 0
        started.result()
        waiter.cancel()
        demo_file = network.write_demo_file()
        print(login_instructions(demo_summary(config, network.demo_catalog)), flush=True)
        log.info("network.ready", demo_file=str(demo_file))
        while not stop.is_set():
            dead = network.dead_child()
            if dead is not None and dead.name.startswith("synapse-"):
                # A Synapse worker holds no state of its own: start it again, as
                # docker-compose's `restart:` does, while the rest keeps running.
                log.warning("network.worker_restarted", component=dead.name,
                            code=dead.process.returncode if dead.process else None)
                # A worker that keeps failing is retried at most every few seconds.
                await asyncio.sleep(min(30.0, 2.0 * network.restarts.get(dead.name, 0)))
                network.restarts[dead.name] = network.restarts.get(dead.name, 0) + 1
                network._spawn(dead)
                continue
            if dead is not None:
                log.error("network.component_died", component=dead.name,
                          code=dead.process.returncode if dead.process else None,
                          last_lines=network._tail(dead))
                return 1
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
        return 0
    except StartupError as e:
        log.error("network.start_failed", error=str(e))
        print(f"\nMercato could not start: {e}", file=sys.stderr)
        return 1
    finally:
        await asyncio.get_running_loop().run_in_executor(None, network.stop)
