"""Synapse and Mercato's components as separate processes a test can kill one at a time.

`mercato up` stops the whole network when a component dies (right for an operator:
nothing half-runs unnoticed), so a fault test that needs commerce (or the contacts
bridge, or the shop bot) down while Synapse keeps running — or Synapse down under a
running component — starts each itself, with the configuration `mercato up` renders
(`render_all`) and the same commands (`python -m synapse.app.homeserver`,
`mercato run commerce|contacts|shopbot`). A test starts only what it needs. Nothing
in the product changes for the tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from mercato.config import MercatoConfig, load_config, write_config
from mercato_ops.render import RenderedPaths, render_all
from mercato_ops.testnet import write_test_config
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api

START_TIMEOUT = 120.0
POST_KEY = "org.mercato.post"


class ClientApiProxy(Protocol):
    """A proxy a test puts between a component and Synapse's client API."""

    port: int

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Harness:
    """One Synapse and the components a test starts; `hs_url`, `config` and
    `commerce_url` make it usable wherever the integration helpers take a RunningNetwork."""

    def __init__(self, base_dir: Path, **overrides: Any) -> None:
        self.base_dir = base_dir
        self.config_path = write_test_config(base_dir, demo={"enabled": False}, **overrides)
        self.config: MercatoConfig = load_config(self.config_path)
        self.paths: RenderedPaths = render_all(self.config)
        self.commerce_config_path = self.config_path
        self.contacts_config_path = self.config_path
        self.synapse: subprocess.Popen[bytes] | None = None
        self.commerce: subprocess.Popen[bytes] | None = None
        self.shopbot: subprocess.Popen[bytes] | None = None
        self.contacts: subprocess.Popen[bytes] | None = None

    # -- where things are -------------------------------------------------------------

    @property
    def hs_url(self) -> str:
        return self.config.homeserver_url

    @property
    def commerce_url(self) -> str:
        return f"http://127.0.0.1:{self.config.commerce.port}"

    @property
    def commerce_log_path(self) -> Path:
        return self.paths.log_dir / "commerce.out"

    @property
    def commerce_db_path(self) -> Path:
        return self.config.data_path / "commerce.db"

    def route_commerce_through(self, port: int) -> None:
        """Commerce reaches Synapse's client API at 127.0.0.1:`port` (a test proxy);
        Synapse still reaches commerce directly."""
        proxied = self.config.model_copy(update={
            "synapse": self.config.synapse.model_copy(update={"port": port})})
        self.commerce_config_path = self.base_dir / "commerce-via-proxy.yaml"
        write_config(proxied, self.commerce_config_path)

    @asynccontextmanager
    async def commerce_behind(self, proxy: ClientApiProxy) -> AsyncIterator[None]:
        """Synapse and commerce running, commerce reaching Synapse through `proxy`; every
        process and the proxy stopped after the block, whatever happened in it."""
        await proxy.start()
        try:
            self.route_commerce_through(proxy.port)
            self.start_synapse()
            await asyncio.to_thread(self.start_commerce)
            yield
        finally:
            await asyncio.to_thread(self.stop_all)
            await proxy.stop()

    def route_contacts_through(self, port: int) -> None:
        """The contacts bridge reaches Synapse's client API through a test proxy too."""
        proxied = self.config.model_copy(update={
            "synapse": self.config.synapse.model_copy(update={"port": port})})
        self.contacts_config_path = self.base_dir / "contacts-via-proxy.yaml"
        write_config(proxied, self.contacts_config_path)

    # -- processes ----------------------------------------------------------------------

    def _spawn(self, argv: list[str], log_name: str,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.paths.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.paths.log_dir / log_name, "ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=self.paths.data_dir, start_new_session=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    def _wait_healthy(self, process: subprocess.Popen[bytes], url: str, what: str,
                      log_path: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{what} exited with {process.returncode} while starting:"
                                     f"\n{tail(log_path)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{what} not healthy at {url} after {START_TIMEOUT:.0f} s:\n"
                             f"{tail(log_path)}")

    def start_synapse(self) -> None:
        assert self.synapse is None or self.synapse.poll() is not None
        self.synapse = self._spawn([sys.executable, "-m", "synapse.app.homeserver", "-c",
                                    str(self.paths.homeserver_config)], "synapse.out")
        self._wait_healthy(self.synapse, f"{self.hs_url}/health", "synapse",
                           self.paths.log_dir / "synapse.out")

    def start_commerce(self, env: dict[str, str] | None = None, wait: bool = True) -> None:
        assert self.commerce is None or self.commerce.poll() is not None
        self.commerce = self._spawn(
            [sys.executable, "-m", "mercato_ops", "--config", str(self.commerce_config_path),
             "run", "commerce"], "commerce.out", env)
        if wait:
            self.wait_commerce_ready()

    def wait_commerce_ready(self) -> None:
        assert self.commerce is not None
        self._wait_healthy(self.commerce, f"{self.commerce_url}/health", "commerce",
                           self.commerce_log_path)

    @staticmethod
    def _stop(process: subprocess.Popen[bytes] | None, sig: int, timeout: float = 30) -> int | None:
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def start_shopbot(self, env: dict[str, str] | None = None) -> None:
        """The shop bot (its account must exist: `mercato up` registers it)."""
        assert self.shopbot is None or self.shopbot.poll() is not None
        self.shopbot = self._spawn(
            [sys.executable, "-m", "mercato_ops", "--config", str(self.config_path),
             "run", "shopbot"], "shopbot.out", env)
        self._wait_healthy(self.shopbot, f"http://127.0.0.1:{self.config.shopbot.port}/health",
                           "shopbot", self.paths.log_dir / "shopbot.out")

    def start_contacts(self, env: dict[str, str] | None = None) -> None:
        assert self.contacts is None or self.contacts.poll() is not None
        self.contacts = self._spawn(
            [sys.executable, "-m", "mercato_ops", "--config", str(self.contacts_config_path),
             "run", "contacts"], "contacts.out", env)
        self._wait_healthy(self.contacts, f"http://127.0.0.1:{self.config.contacts.port}/health",
                           "contacts", self.contacts_log_path)

    @property
    def contacts_log_path(self) -> Path:
        return self.paths.log_dir / "contacts.out"

    def contacts_rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """The contacts bridge's SQLite database as it is now."""
        path = self.config.data_path / "contacts.db"
        with closing(sqlite3.connect(path, timeout=30)) as conn:
            return conn.execute(sql, args).fetchall()

    def stop_shopbot(self, sig: int = signal.SIGTERM) -> int | None:
        return self._stop(self.shopbot, sig)

    def stop_contacts(self, sig: int = signal.SIGTERM) -> int | None:
        return self._stop(self.contacts, sig)

    def stop_commerce(self, sig: int = signal.SIGTERM) -> int | None:
        return self._stop(self.commerce, sig)

    def stop_synapse(self, sig: int = signal.SIGTERM) -> int | None:
        return self._stop(self.synapse, sig)

    def stop_all(self) -> None:
        self._stop(self.contacts, signal.SIGTERM)
        self.stop_shopbot()
        self.stop_commerce()
        self.stop_synapse()

    # -- what happened -------------------------------------------------------------------

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """The commerce database as it is now (`?` placeholders), either engine."""
        url = self.config.database_url("commerce")
        if url.startswith(("postgres://", "postgresql://")):
            import psycopg2

            with closing(psycopg2.connect(url, connect_timeout=10)) as conn, \
                    conn.cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), args)
                return [tuple(row) for row in cursor.fetchall()]
        with closing(sqlite3.connect(self.commerce_db_path, timeout=30)) as conn:
            return conn.execute(sql, args).fetchall()

    def commerce_events(self, since_start: int = 1) -> list[dict[str, Any]]:
        """Commerce's JSON log lines, from its `since_start`-th start on."""
        events: list[dict[str, Any]] = []
        starts = 0
        if not self.commerce_log_path.exists():
            return events
        for line in self.commerce_log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "appservice.listening":
                starts += 1
            if starts >= since_start:
                events.append(event)
        return events

    def logged(self, name: str, since_start: int = 1) -> list[dict[str, Any]]:
        return [e for e in self.commerce_events(since_start) if e.get("event") == name]


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def until(check: Callable[[], Any], timeout: float, what: str,
                interval: float = 0.2) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(interval)


# -- campaigns and the rooms they land in ---------------------------------------------

async def draft(api: Api, slug: str, key: str, title: str, text: str, **extra: Any) -> int:
    status, campaign = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "text", "fields": {"title": title, "text": text}, **extra})
    assert status == 201, campaign
    return int(campaign["id"])


async def draft_rounds(api: Api, shops: list[tuple[str, str]], rounds: int
                       ) -> tuple[dict[str, list[int]], dict[int, str]]:
    """`rounds` text campaigns per shop, drafted round by round ("Post 0" of every shop,
    then "Post 1", …): each shop's campaign IDs in order, and each campaign's shop."""
    order: dict[str, list[int]] = {slug: [] for slug, _ in shops}
    campaigns: dict[int, str] = {}
    for n in range(rounds):
        for slug, key in shops:
            campaign_id = await draft(api, slug, key, f"Post {n}", f"{slug} number {n}")
            order[slug].append(campaign_id)
            campaigns[campaign_id] = slug
    return order, campaigns


async def posted_coupon(api: Api, slug: str, key: str, follower: MatrixClient,
                        room_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A coupon campaign (5 codes, a day to claim them) sent now: the campaign, and its
    post as the follower in `room_id` received it."""
    status, campaign = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "coupon", "fields": {"title": "Ten percent off"},
        "coupon": {"stock": 5, "expires_at": int(time.time() * 1000) + 86_400_000}})
    assert status == 201, campaign
    await schedule(api, slug, key, campaign["id"])
    post = await follower.wait_for_message(
        room_id, lambda e: e.get("content", {}).get(POST_KEY, {}).get(
            "campaign") == campaign["id"])
    return campaign, post


async def schedule(api: Api, slug: str, key: str, campaign_id: int,
                   at_ms: int | None = None) -> None:
    body = {"at": at_ms} if at_ms is not None else None
    status, answer = await api.call("POST", f"/shops/{slug}/campaigns/{campaign_id}/schedule",
                                    key, body)
    assert status == 200, answer


async def campaign_states(api: Api, campaigns: dict[int, str]) -> dict[int, str]:
    states = {}
    for campaign_id, slug in campaigns.items():
        status, body = await api.call("GET", f"/shops/{slug}/campaigns/{campaign_id}",
                                      api.operator)
        assert status == 200, body
        states[campaign_id] = body["state"]
    return states


async def wait_all_sent(api: Api, campaigns: dict[int, str], timeout: float) -> None:
    async def sent() -> bool:
        return set((await campaign_states(api, campaigns)).values()) == {"sent"}

    try:
        await until(sent, timeout, "every campaign sent", interval=0.5)
    except AssertionError:
        raise AssertionError(f"not every campaign was sent: "
                             f"{await campaign_states(api, campaigns)}") from None


async def timeline(client: MatrixClient, room_id: str) -> list[dict[str, Any]]:
    """Every event of the room, oldest first (paginated to the start)."""
    events: list[dict[str, Any]] = []
    params = {"dir": "b", "limit": "500"}
    while True:
        data = await client.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages", params=params)
        events.extend(data.get("chunk", []))
        if not data.get("end") or not data.get("chunk"):
            return list(reversed(events))
        params = {**params, "from": data["end"]}


async def posts_in(client: MatrixClient, room_id: str) -> list[int]:
    """The campaign IDs of every promo post in the room, in timeline order (redacted
    posts keep no content and are not counted)."""
    return [e["content"][POST_KEY]["campaign"] for e in await timeline(client, room_id)
            if e["type"] == "m.room.message" and POST_KEY in e.get("content", {})]


def check_exactly_once_in_order(posts: dict[str, list[int]],
                                expected: dict[str, list[int]]) -> tuple[int, int]:
    """Every room has each of its campaigns once, in the order they were due.

    Returns (lost, doubled) over all rooms, after asserting both are 0.
    """
    lost = doubled = 0
    for room_id, want in expected.items():
        got = posts.get(room_id, [])
        lost += len(set(want) - set(got))
        doubled += len(got) - len(set(got))
    assert (lost, doubled) == (0, 0), f"lost {lost}, doubled {doubled}: {posts} vs {expected}"
    for room_id, want in expected.items():
        assert posts[room_id] == want, f"{room_id}: out of order {posts[room_id]} vs {want}"
    return lost, doubled


__all__ = ["Harness", "until", "draft", "schedule", "wait_all_sent",
           "timeline", "posts_in", "check_exactly_once_in_order", "tail"]
