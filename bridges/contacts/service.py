"""The contacts bridge process: its bot, its identity-service API, and what it keeps.

It keeps keyed hashes of opted-in identifiers and nothing of anyone's contacts. The
one place plain text could linger is the transaction inbox, which stores every event
before it is handled: so once a message is handled, its stored copy is replaced by a
stub (on SQLite with secure_delete, and the write-ahead log truncated), whether it was
a user's `findable phone …` or the bot's own summary echoed back by the homeserver.

Every message the bridge sends — the bot's answers, summaries and notices, the ghosts'
relays from a network — goes through the core outbox (mercato/matrix/outbox.py): kept
until it is sent once, in each room's order, and then forgotten (`forget_sent`) so
that no answer lingers either.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
from mautrix.types import Event as MatrixEvent
from mautrix.types import EventType, RoomID, UserID

import bridges.contacts.connectors.commands  # noqa: F401  (declares `xmpp …`)
from bridges.contacts.api.routes import ApiContext, add_api_routes
from bridges.contacts.config import ContactsConfig
from bridges.contacts.connectors.manager import Networks
from bridges.contacts.db.upgrade import upgrade_table
from bridges.contacts.discovery import Discovery
from bridges.contacts.handlers import ContactsHandlers
from bridges.contacts.hashing import IdentifierHasher
from bridges.contacts.metrics import refresh_on_scrape
from bridges.contacts.policy import Limits
from bridges.contacts.space import ContactsSpaces
from bridges.contacts.verification import CodeSender, HomeserverThreepids
from mercato.config import MercatoConfig
from mercato.db import is_postgres
from mercato.logging import get_logger
from mercato.matrix.appservice import MercatoAppService
from mercato.matrix.outbox import Message, Outbox

log = get_logger(__name__)

GREETING = (
    "Hi, I am Mercato's contacts bridge. Send me your contacts as a file (.vcf from your "
    "phone, or .csv from Google Contacts or Outlook) and I will tell you who of them is "
    "already here — only people who chose to be found — and keep nothing of your address "
    "book. To let people who have your number or email find you, type "
    "`findable phone +47…` or `findable email you@example.org`. Type `help` for the rest.")
SCRUBBED_TYPE = "org.mercato.scrubbed"
# The kinds of message the bridge's service itself sends (the outbox's `kind`).
GREETING_KIND = "greeting"
FAILURE_KIND = "failure_notice"


class ContactsBridge(MercatoAppService):
    name = "contacts"

    def __init__(self, config: MercatoConfig) -> None:
        settings = ContactsConfig.of(config)
        super().__init__(config, settings, upgrade_table)
        # Every message the bot and the ghosts send: recorded first, sent once, in order.
        self.outbox = Outbox(self.db, self.name, lambda mxid: self.intent_for(UserID(mxid)),
                             forget_sent=True)
        self.hasher = IdentifierHasher(settings.hmac_secret, settings.lookup_pepper)
        self.discovery = Discovery(self.db, self.hasher,
                                   Limits.of(settings, config.server_name))
        self.spaces = ContactsSpaces(self.db, lambda: self.bot, config.server_name)
        self.handlers = ContactsHandlers(
            self, self.discovery, spaces=self.spaces,
            codes=CodeSender(settings, config.server_name, self.http_session),
            threepids=HomeserverThreepids(config.homeserver_url, config.server_name,
                                          settings.as_token, self.http_session))
        self._http: aiohttp.ClientSession | None = None
        self._last_prune = 0.0
        add_api_routes(self.app, ApiContext(self.db, self.discovery, config, self.http_session))
        self.app.middlewares.append(refresh_on_scrape(self.db))
        # Live networks (XMPP): logins, portals, messages both ways (docs/xmpp.md).
        self.networks = Networks(self)
        self.handlers.command_extra = {"networks": self.networks}

    def http_session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def on_start(self) -> None:
        self.outbox.start()  # first: the networks' catch-up relays through it
        # Stored network logins reconnect in the background from here.
        await self.networks.start()
        try:
            await self.bot.set_displayname("Mercato contacts")
        except Exception as e:  # cosmetic; never a reason not to start
            log.warning("contacts.displayname_failed", error=str(e))
        await self.spaces.catch_up()

    async def stop(self) -> None:
        await self.networks.stop()
        await super().stop()
        await self.outbox.stop()  # after the inbox and the networks: they record messages
        if self._http is not None:
            await self._http.close()

    async def is_direct(self, room_id: RoomID) -> bool:
        members = await self.state_store.get_members(room_id)
        if not members:
            members = list(await self.bot.get_joined_members(room_id))
        return len(members) <= 2

    # -- events -----------------------------------------------------------------------

    async def handle_event(self, event: MatrixEvent, raw: dict[str, Any]) -> None:
        if raw.get("type") == SCRUBBED_TYPE:
            return
        if await self.networks.handles(raw.get("room_id")):
            # A portal: its messages go to the network (kept until sent), not the bot.
            await self.networks.matrix_event(raw)
            if raw.get("type") == EventType.ROOM_MESSAGE.t:
                await self.scrub(raw)
            return
        if await self.accept_invite_if_for_bot(event):
            await self._greet(UserID(event.sender), event.room_id)
            return
        kind = raw.get("type")
        if kind == EventType.ROOM_MEMBER.t:
            content = raw.get("content") or {}
            if content.get("membership") in ("join", "leave", "ban") and raw.get("state_key"):
                await self.spaces.membership_changed(raw["room_id"], raw["state_key"])
            return
        if kind not in (EventType.ROOM_MESSAGE.t, EventType.REACTION.t,
                        EventType.ROOM_ENCRYPTED.t):
            return
        if raw.get("sender") != self.bot_mxid:
            try:
                if kind == EventType.ROOM_MESSAGE.t:
                    await self.handlers.message(raw)
                elif kind == EventType.REACTION.t:
                    await self.handlers.reaction(raw)
                elif await self.is_direct(RoomID(raw["room_id"])):
                    await self.handlers.encrypted(raw)
            except Exception:
                # Not retried: the stored event is scrubbed below and the sender is told.
                log.exception("contacts.event_failed", event_id=raw.get("event_id"),
                              event_type=kind, sender=raw.get("sender"))
                await self._tell_failure(raw)
        if kind == EventType.ROOM_MESSAGE.t:
            await self.scrub(raw)
        await self._maybe_prune()

    def wants_ephemeral(self, raw: dict[str, Any]) -> bool:
        # Only typing in portals and the presence of users logged in to a network are used
        # (passed on to the network); nothing else is kept.
        if raw.get("type") == "m.typing":
            return raw.get("room_id") in self.networks.portals.rooms
        return raw.get("type") == "m.presence" and \
            self.networks.logged_in(str(raw.get("sender")))

    async def handle_ephemeral(self, raw: dict[str, Any]) -> None:
        content = raw.get("content")
        if not isinstance(content, dict):
            return
        if raw.get("type") == "m.typing" and isinstance(content.get("user_ids"), list):
            await self.networks.matrix_typing(str(raw.get("room_id")), content["user_ids"])
        elif raw.get("type") == "m.presence" and isinstance(content.get("presence"), str):
            await self.networks.matrix_presence(str(raw.get("sender")), content["presence"])

    async def _tell_failure(self, raw: dict[str, Any]) -> None:
        if raw.get("type") != EventType.ROOM_MESSAGE.t:
            return
        notice: dict[str, Any] = {
            "msgtype": "m.notice",
            "body": "Something went wrong on my side with that message; nothing was kept. "
                    "Send it again in a moment.",
            "m.relates_to": {"m.in_reply_to": {"event_id": raw["event_id"]}},
        }
        # If even recording this fails, the exception makes the inbox retry the whole event.
        await self.outbox.record(Message(
            txn_id=f"mercato.contacts.failed.{raw['event_id']}", room_id=raw["room_id"],
            sender=self.bot_mxid, content=notice, kind=FAILURE_KIND))

    async def scrub(self, raw: dict[str, Any]) -> None:
        """Replace a handled message's stored copy with a stub that holds no text."""
        stub: dict[str, Any] = {key: raw[key] for key in
                                ("room_id", "sender", "event_id", "origin_server_ts")
                                if key in raw}
        stub.update(type=SCRUBBED_TYPE, content={})
        if not is_postgres(self.db):
            await self.db.execute("PRAGMA secure_delete = ON")
        await self.db.execute("UPDATE as_inbox SET event_json=$1, handled_at=$2"
                              " WHERE event_id=$3", json.dumps(stub), int(time.time() * 1000),
                              raw.get("event_id"))
        if not is_postgres(self.db):
            # Old page images stay in the write-ahead log until it is checkpointed.
            await self.db.fetch("PRAGMA wal_checkpoint(TRUNCATE)")

    async def _maybe_prune(self) -> None:
        if time.monotonic() - self._last_prune > 3600:
            self._last_prune = time.monotonic()
            await self.handlers.prune()

    async def _greet(self, user_id: UserID, room_id: RoomID) -> None:
        greeted = await self.db.fetchval(
            "SELECT greeted_at FROM bridge_user WHERE user_id=$1 AND dm_room_id=$2",
            user_id, room_id)
        if greeted:
            return
        await self.outbox.record(Message(
            txn_id=f"mercato.contacts.greet.{room_id}", room_id=room_id, sender=self.bot_mxid,
            content={"msgtype": "m.notice", "body": GREETING}, kind=GREETING_KIND))
        await self.db.execute(
            "INSERT INTO bridge_user (user_id, dm_room_id, greeted_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (user_id) DO UPDATE SET dm_room_id=excluded.dm_room_id,"
            " greeted_at=excluded.greeted_at",
            user_id, room_id, int(time.time() * 1000))
