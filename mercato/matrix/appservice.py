"""The base every Mercato appservice stands on.

The homeserver side (transactions, user/alias queries, ping) is served here, not
by mautrix's `AppService`, because mautrix answers 200 before handling events and
accepts the legacy query-string token. The client side (intents that act as the
bot or as a namespaced user) is mautrix's `AppServiceAPI`.

Start-up order: database upgrades → HTTP server → wait for Synapse → register
the bot → ping Synapse (which also cuts its retry backoff) → inbox worker →
the component's own `on_start` → ready.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import Any, cast

import aiohttp
from aiohttp import web
from mautrix.appservice import AppServiceAPI, IntentAPI
from mautrix.appservice.state_store.asyncpg import PgASStateStore
from mautrix.client.state_store.asyncpg import PgStateStore
from mautrix.types import (
    Event,
    EventType,
    Membership,
    MemberStateEventContent,
    StateEvent,
    UserID,
)
from mautrix.util.async_db import Database, UpgradeTable
from mautrix.util.logging import TraceLogger

from mercato.config import AppServiceConfig, MercatoConfig
from mercato.db import open_database
from mercato.http_api.auth import bearer_token, same_secret
from mercato.logging import get_logger
from mercato.matrix import inbox as inbox_module
from mercato.matrix import paths
from mercato.matrix.inbox import Inbox
from mercato.web import add_health_routes, json_error, serve

log = get_logger(__name__)

HOMESERVER_WAIT_SECONDS = 120.0
EPHEMERAL_TYPES = frozenset({"m.receipt", "m.typing", "m.presence"})


def membership_of(event: StateEvent) -> Membership | None:
    """The membership an m.room.member event sets; None for any other state event.

    (mautrix types a state event's content as the union of every state content.)
    """
    content = event.content
    return content.membership if isinstance(content, MemberStateEventContent) else None


class MercatoAppService:
    """Subclass and override `handle_event`, `on_start`, `query_user`, `query_alias`."""

    name: str = "appservice"

    def __init__(self, config: MercatoConfig, service: AppServiceConfig,
                 upgrade_table: UpgradeTable) -> None:
        self.config = config
        self.service = service
        self.appservice_id = f"mercato-{self.name}"
        url = config.database_url(self.name)
        self.db: Database = open_database(
            url, upgrade_table, self.name,
            max_connections=config.scale.connections_per_process)
        # SQLite: the inbox stores transactions through a second connection (PostgreSQL's
        # pool has several already).
        self.intake_db = open_database(url, UpgradeTable(), self.name) \
            if url.startswith("sqlite:") else None
        self.inbox = Inbox(self.db, self.name, self.intake_db, queue_of=self.inbox_queue)
        self.state_store = PgASStateStore(self.db)
        self.ready = False
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self._register_routes()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._api: AppServiceAPI | None = None

    # -- identities -----------------------------------------------------------------

    @property
    def bot_mxid(self) -> UserID:
        return UserID(self.config.user_id(self.service.bot_localpart))

    @property
    def bot(self) -> IntentAPI:
        if self._api is None:
            raise RuntimeError("the appservice has not been started")
        return self._api.bot_intent()

    def intent_for(self, user_id: UserID) -> IntentAPI:
        """Act as a user of this appservice's namespace."""
        if self._api is None:
            raise RuntimeError("the appservice has not been started")
        return self._api.intent(user_id)

    # -- homeserver-facing HTTP -------------------------------------------------------

    def _register_routes(self) -> None:
        r = self.app.router
        r.add_put("/_matrix/app/v1/transactions/{txn_id}", self._http_transaction)
        r.add_get("/_matrix/app/v1/users/{user_id}", self._http_query_user)
        r.add_get("/_matrix/app/v1/rooms/{alias}", self._http_query_alias)
        r.add_post("/_matrix/app/v1/ping", self._http_ping)
        add_health_routes(self.app, self.name, lambda: self.ready)

    def _auth_error(self, request: web.Request) -> web.Response | None:
        """Only `Authorization: Bearer <hs_token>` is accepted (never ?access_token=)."""
        token = bearer_token(request)
        if token is None:
            return json_error(401, "M_UNAUTHORIZED",
                              "Missing Authorization: Bearer <hs_token> header")
        if not same_secret(token, self.service.hs_token):
            return json_error(403, "M_FORBIDDEN", "Invalid hs_token")
        return None

    async def _http_transaction(self, request: web.Request) -> web.Response:
        if error := self._auth_error(request):
            return error
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return json_error(400, "M_NOT_JSON", "Transaction body is not JSON")
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return json_error(400, "M_BAD_JSON", "Transaction needs an 'events' list of objects")
        ephemeral = body.get("ephemeral", body.get("de.sorunome.msc2409.ephemeral")) or []
        if isinstance(ephemeral, list):
            # Receipts and typing: approximate by nature (Synapse drops them while we are
            # down), but they go through the same inbox so their order is kept.
            events = events + [e for e in ephemeral
                               if isinstance(e, dict) and self.wants_ephemeral(e)]
        txn_id = request.match_info["txn_id"]
        try:
            await self.inbox.store_transaction(txn_id, events)
        except Exception:
            # Not stored means not acknowledged: Synapse will send it again.
            log.exception("transaction.store_failed", txn_id=txn_id)
            return json_error(503, "M_UNKNOWN", "Could not store the transaction; retry later")
        return web.json_response({})

    async def _http_query_user(self, request: web.Request) -> web.Response:
        if error := self._auth_error(request):
            return error
        if await self.query_user(UserID(request.match_info["user_id"])):
            return web.json_response({})
        return json_error(404, "M_NOT_FOUND", "No such user in this namespace")

    async def _http_query_alias(self, request: web.Request) -> web.Response:
        if error := self._auth_error(request):
            return error
        if await self.query_alias(request.match_info["alias"]):
            return web.json_response({})
        return json_error(404, "M_NOT_FOUND", "No such room alias in this namespace")

    async def _http_ping(self, request: web.Request) -> web.Response:
        if error := self._auth_error(request):
            return error
        return web.json_response({})

    # -- event handling ---------------------------------------------------------------

    async def _dispatch(self, raw: dict[str, Any]) -> None:
        if raw.get("type") in EPHEMERAL_TYPES:
            await self.handle_ephemeral(raw)
            return
        event = Event.deserialize(raw)
        if isinstance(event, StateEvent):
            event.type = event.type.with_class(EventType.Class.STATE)
            await self.state_store.update_state(event)
        else:
            event.type = event.type.with_class(EventType.Class.MESSAGE)
        await self.handle_event(event, raw)

    async def accept_invite_if_for_bot(self, event: Event) -> bool:
        """Join rooms the bot is invited to; returns True if this event was that invite."""
        if (
            event.type == EventType.ROOM_MEMBER
            and isinstance(event, StateEvent)
            and event.state_key == self.bot_mxid
            and event.content.membership == Membership.INVITE
        ):
            await self.bot.join_room(event.room_id)
            return True
        return False

    # -- overridable ------------------------------------------------------------------

    async def handle_event(self, event: Event, raw: dict[str, Any]) -> None:
        """Handle one room event (typed, and as received); raising makes the inbox retry it."""

    async def handle_ephemeral(self, raw: dict[str, Any]) -> None:
        """Handle a receipt or typing notification (only if the registration asks for them)."""

    def wants_ephemeral(self, raw: dict[str, Any]) -> bool:
        """Whether to keep this receipt, typing or presence event (the rest are not stored)."""
        return True

    def inbox_queue(self, raw: dict[str, Any]) -> str | None:
        """Which inbox queue an event waits in (its events handled in order, queues side by
        side): its room's by default. Decided when the event is stored."""
        return inbox_module.queue_of(raw)

    async def query_user(self, user_id: UserID) -> bool:
        return False

    async def query_alias(self, alias: str) -> bool:
        return False

    async def on_start(self) -> None:
        """Runs once the homeserver is reachable and the bot is registered."""

    # -- lifecycle --------------------------------------------------------------------

    async def _wait_for_homeserver(self) -> None:
        assert self._session is not None
        url = paths.url(self.config.homeserver_url, paths.matrix_path("client", "versions"))
        deadline = asyncio.get_running_loop().time() + HOMESERVER_WAIT_SECONDS
        while True:
            try:
                async with self._session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"Synapse did not answer at {url} within "
                                   f"{HOMESERVER_WAIT_SECONDS:.0f} s")
            await asyncio.sleep(0.5)

    async def start(self) -> None:
        await self.db.start()
        await inbox_module.upgrade_table.upgrade(self.db)
        await PgStateStore.upgrade_table.upgrade(self.db)
        if self.intake_db is not None:
            await self.intake_db.start()
        self._session = aiohttp.ClientSession()
        self._api = AppServiceAPI(
            base_url=self.config.homeserver_url,
            bot_mxid=self.bot_mxid,
            token=self.service.as_token,
            # setup_logging makes TraceLogger the class of every new logger.
            log=cast(TraceLogger, logging.getLogger(f"mercato.{self.name}.matrix")),
            state_store=self.state_store,
            client_session=self._session,
            default_retry_count=3,
        )
        self._runner = await serve(self.app, self.service.bind_address, self.service.port)
        log.info("appservice.listening", component=self.name, port=self.service.port)
        await self._wait_for_homeserver()
        await self.bot.ensure_registered()
        try:
            duration = await self.bot.appservice_ping(self.appservice_id)
            log.info("appservice.ping_ok", component=self.name, duration_ms=duration)
        except Exception as e:
            log.warning("appservice.ping_failed", component=self.name, error=str(e))
        self.inbox.start(self._dispatch)
        await self.on_start()
        self.ready = True
        log.info("appservice.ready", component=self.name, bot=self.bot_mxid)

    async def stop(self) -> None:
        self.ready = False
        await self.inbox.stop()
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()
        if self.intake_db is not None:
            await self.intake_db.stop()
        await self.db.stop()
        log.info("appservice.stopped", component=self.name)

    async def run_until_stopped(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            await stop.wait()
        finally:
            await self.stop()
