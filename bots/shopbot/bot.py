"""The shop bot: an ordinary Matrix account that answers commands in any room it is in.

Login that survives restarts (one device, not a new one per start), a sync loop that
resumes where it stopped, invites accepted, and commands: declared in
`bots.shopbot.commands`, run by `mercato.commands`, answered here as notices that
reply to the command. The commands call the commerce HTTP API for the sender.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    RoomSendError,
    SyncError,
    SyncResponse,
)
from prometheus_client import Counter

from bots.shopbot.api import CommerceApi, commerce_api_url
from bots.shopbot.commands import ShopContext, registry
from mercato.commands import Reply, strip_reply_fallback
from mercato.config import MercatoConfig
from mercato.logging import get_logger
from mercato.matrix.html import sanitize_html
from mercato.web import add_health_routes, serve

log = get_logger(__name__)

COMMANDS = Counter("mercato_shopbot_commands_total", "Commands answered", ["command", "ok"])
API_TIMEOUT = aiohttp.ClientTimeout(total=30)


def reply_content(reply: Reply, event_id: str, sender: str) -> dict[str, Any]:
    """The notice answering a command: a reply to it, with sanitised HTML if any."""
    content: dict[str, Any] = {
        "msgtype": "m.notice", "body": reply.text,
        "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
        "m.mentions": {"user_ids": [sender]},
    }
    if reply.html:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = sanitize_html(reply.html)
    return content


def command_text(content: dict[str, Any]) -> str | None:
    """The text of a message that may be a command; None for edits, notices, media."""
    if content.get("msgtype") != "m.text":
        return None
    if content.get("m.relates_to", {}).get("rel_type") == "m.replace":
        return None
    body = content.get("body")
    return strip_reply_fallback(body) if isinstance(body, str) else None


class ShopBot:
    def __init__(self, config: MercatoConfig) -> None:
        self.config = config
        self.user_id = config.user_id(config.shopbot.localpart)
        self.state_dir = config.data_path / "shopbot"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            config.homeserver_url, self.user_id,
            store_path=str(self.state_dir),
            config=AsyncClientConfig(store_sync_tokens=False, encryption_enabled=False),
        )
        self.commands = registry.with_prefix(config.shopbot.prefix)
        self.http: aiohttp.ClientSession | None = None
        self.api: CommerceApi | None = None
        self.ready = False
        self.app = web.Application()
        add_health_routes(self.app, "shopbot", lambda: self.ready)

    @property
    def _session_file(self) -> Path:
        return self.state_dir / "session.json"

    def _load_session(self) -> dict[str, str]:
        try:
            return json.loads(self._session_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _save_session(self, **values: str) -> None:
        session = {**self._load_session(), **values}
        tmp = self._session_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(session, out)
        os.replace(tmp, self._session_file)

    async def login(self) -> None:
        session = self._load_session()
        if session.get("access_token"):
            self.client.restore_login(self.user_id, session["device_id"],
                                      session["access_token"])
            whoami = await self.client.whoami()
            if getattr(whoami, "user_id", None) == self.user_id:
                return
            log.warning("shopbot.session_expired")
        response = await self.client.login(self.config.shopbot.password,
                                           device_name="Mercato shop bot")
        if not isinstance(response, LoginResponse):
            raise RuntimeError(f"shop bot could not log in as {self.user_id}: {response}")
        self._save_session(access_token=response.access_token, device_id=response.device_id,
                           since="")

    async def _handle_sync(self, response: SyncResponse) -> None:
        for room_id in response.rooms.invite:
            await self.client.join(room_id)
            log.info("shopbot.joined", room_id=room_id)
        for room_id, room in response.rooms.join.items():
            members = room.summary.joined_member_count if room.summary else None
            matrix_room = self.client.rooms.get(room_id)
            count = members or (matrix_room.member_count if matrix_room else 0)
            for event in room.timeline.events:
                source = event.source
                if source.get("type") != "m.room.message" or event.sender == self.user_id:
                    continue
                body = command_text(source.get("content", {}))
                if body is None:
                    continue
                try:
                    await self._answer(room_id, source["event_id"], event.sender, body,
                                       direct=count == 2)
                except Exception:  # one bad event must not stop the bot for everyone
                    log.exception("shopbot.command_failed", room_id=room_id,
                                  event_id=source["event_id"])

    async def _answer(self, room_id: str, event_id: str, sender: str, body: str,
                      *, direct: bool) -> None:
        ctx = ShopContext(sender=sender, room_id=room_id, event_id=event_id, direct=direct,
                          api=self.api.as_user(sender) if self.api else None)
        outcome = await self.commands.dispatch(body, ctx)
        if outcome is None:
            return
        COMMANDS.labels(outcome.command, str(outcome.ok).lower()).inc()
        log.info("shopbot.command", command=outcome.command, ok=outcome.ok, sender=sender,
                 room_id=room_id)
        await self._reply(room_id, event_id, reply_content(outcome.reply, event_id, sender))

    async def _reply(self, room_id: str, event_id: str, content: dict[str, Any]) -> None:
        # The txnId comes from the command's event: a resend after a restart is deduplicated.
        response = await self.client.room_send(room_id, "m.room.message", content,
                                               tx_id=f"reply.{event_id}",
                                               ignore_unverified_devices=True)
        if isinstance(response, RoomSendError):
            log.warning("shopbot.reply_failed", room_id=room_id, event_id=event_id,
                        error=response.message)

    async def run(self, stop: asyncio.Event) -> None:
        self.http = aiohttp.ClientSession(timeout=API_TIMEOUT)
        self.api = CommerceApi(self.http, commerce_api_url(self.config),
                               self.config.commerce.service_token)
        await self.login()
        since = self._load_session().get("since") or None
        if since is None:
            # First start: old messages are not commands to answer now.
            first = await self.client.sync(timeout=0, full_state=True)
            if isinstance(first, SyncError):
                raise RuntimeError(f"first sync failed: {first.message}")
            for room_id in first.rooms.invite:
                await self.client.join(room_id)
            since = first.next_batch
            self._save_session(since=since)
        self.ready = True
        log.info("shopbot.ready", user_id=self.user_id)
        while not stop.is_set():
            response = await self.client.sync(timeout=30000, since=since)
            if isinstance(response, SyncError):
                log.warning("shopbot.sync_failed", error=response.message)
                await asyncio.sleep(2)
                continue
            await self._handle_sync(response)
            since = response.next_batch
            self._save_session(since=since)

    async def run_until_stopped(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        runner = await serve(self.app, self.config.shopbot.bind_address, self.config.shopbot.port)
        task = asyncio.create_task(self.run(stop))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waiter = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()  # raise the failure instead of idling without a bot
        finally:
            task.cancel()
            waiter.cancel()
            await asyncio.gather(task, waiter, return_exceptions=True)
            await self.client.close()
            if self.http is not None:
                await self.http.close()
            await runner.cleanup()
            log.info("shopbot.stopped")
