"""The bridge's network side: logins, their sessions, and what flows through them.

Started with the bridge (after its inbox, so it waits for `ready` before handling a
portal's events): its tables are upgraded, then every stored login reconnects in the
background. A loop delivers what could not be delivered at once (Synapse or the
network was away) and notices contacts who opted in on Mercato since.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from mautrix.types import (
    EventType,
    PresenceState,
    RoomID,
    UserID,
)

from bridges.contacts.connectors import load_connectors, store
from bridges.contacts.connectors.base import (
    Connector,
    IncomingMessage,
    LoginFailed,
    RemoteContact,
    RemoteID,
    Session,
)
from bridges.contacts.connectors.credentials import Unreadable, Vault
from bridges.contacts.connectors.messages import Messages
from bridges.contacts.connectors.portals import NOTICE, BridgeSide, Portals, RosterOutcome
from mercato.logging import get_logger
from mercato.matrix.outbox import Message

log = get_logger(__name__)

LOGIN_TIMEOUT = 30.0
LOOP_SECONDS = 3.0
TYPING_MS = 30_000
MOVES_OVERLAP_MS = 10_000


class NotLoggedIn(Exception):
    pass


class AlreadyLoggedIn(Exception):
    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.account = account


class _Events:
    """One session's reports, turned into the core's work."""

    def __init__(self, networks: Networks, connector: Connector, login: store.Login) -> None:
        self.networks = networks
        self.connector = connector
        self.login = login

    async def connected(self) -> None:
        log.info("network.connected", network=self.connector.network,
                 user_id=self.login.user_id)
        await self.networks.flush(self.connector, self.login)

    async def disconnected(self, reason: str, *, refused: bool = False) -> None:
        log.info("network.disconnected", network=self.connector.network,
                 user_id=self.login.user_id, reason=reason, refused=refused)
        if refused:
            await self.networks.tell(self.login, f"{self.connector.label} refused your stored "
                                     f"login ({reason}). Type `{self.connector.network} login` "
                                     "again with your new password.")

    async def message(self, message: IncomingMessage) -> None:
        await self.networks.messages.incoming(self.connector, self.login, message)

    async def position(self) -> str | None:
        return await store.position(self.networks.bridge.db, self.connector.network,
                                    self.login.user_id)

    async def reached(self, position: str) -> None:
        await store.set_position(self.networks.bridge.db, self.connector.network,
                                 self.login.user_id, position)

    async def _ghost_in_portal(self, contact: RemoteID) -> tuple[Any, str] | None:
        portal = await store.portal(self.networks.bridge.db, self.connector.network,
                                    self.login.user_id, contact)
        if portal is None:
            return None
        return self.networks.bridge.intent_for(UserID(portal.ghost_id)), portal.room_id

    async def typing(self, contact: RemoteID, typing: bool) -> None:
        found = await self._ghost_in_portal(contact)
        if found is not None:
            ghost, room_id = found
            with contextlib.suppress(Exception):  # typing is a hint; never worth a retry
                await ghost.set_typing(RoomID(room_id), TYPING_MS if typing else 0)

    async def presence(self, contact: RemoteID, online: bool) -> None:
        found = await self._ghost_in_portal(contact)
        if found is not None:
            with contextlib.suppress(Exception):
                await found[0].set_presence(PresenceState.ONLINE if online
                                            else PresenceState.OFFLINE)


class Networks:
    def __init__(self, bridge: BridgeSide) -> None:
        self.bridge = bridge
        settings = bridge.config.contacts
        self.connectors = load_connectors(settings.networks)
        self.vault = Vault(settings.credentials_secret)
        self.portals = Portals(bridge)
        self.messages = Messages(bridge, self.portals)
        self.sessions: dict[tuple[str, str], tuple[Session, store.Login]] = {}
        self.ready = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Stored logins still reconnecting after a restart, by (network, user).
        self._resuming: dict[tuple[str, str], asyncio.Task[Any]] = {}
        # Portals whose user was last seen typing: only changes go to the network.
        self._typing: set[str] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await store.upgrade_table.upgrade(self.bridge.db)
        for connector in self.connectors.values():
            if connector.upgrade_table is not None:
                await connector.upgrade_table.upgrade(self.bridge.db)
        await self.portals.load()
        self.ready.set()
        for login in await store.logins(self.bridge.db):
            if login.network in self.connectors:
                self._resuming[(login.network, login.user_id)] = self._spawn(
                    self._resume(self.connectors[login.network], login),
                    f"resume-{login.user_id}")
        self._spawn(self._loop(), "networks-loop")
        self._spawn(self.portals.space_catch_up(), "portals-into-spaces")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stop_resuming(self, network: str, user_id: str) -> None:
        """A new login or a logout replaces what a restart was still reconnecting."""
        task = self._resuming.pop((network, user_id), None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for session, _login in list(self.sessions.values()):
            await session.disconnect()
        self.sessions.clear()

    async def _resume(self, connector: Connector, login: store.Login) -> None:
        """Reconnect a stored login after a restart; keep trying while the server is away."""
        try:
            credentials = self.vault.open(login.network, login.user_id, login.credentials)
        except Unreadable as e:
            log.error("network.login_unreadable", network=login.network,
                      user_id=login.user_id, error=str(e))
            return
        delay = 2.0
        while True:
            session = connector.session(credentials, _Events(self, connector, login))
            # Known before it connects, so the first `connected` flushes what waited.
            self.sessions[(login.network, login.user_id)] = (session, login)
            try:
                await session.connect(LOGIN_TIMEOUT)
            except asyncio.CancelledError:  # a new login or a logout took over
                self.sessions.pop((login.network, login.user_id), None)
                await session.disconnect()
                raise
            except LoginFailed as e:
                self.sessions.pop((login.network, login.user_id), None)
                if not e.retry:
                    await self.tell(login, f"I could not log you back in to {connector.label}: "
                                    f"{e.message}. Type `{connector.network} login` again.")
                    return
                log.info("network.resume_retry", network=login.network, user_id=login.user_id,
                         error=e.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            log.info("network.resumed", network=login.network, user_id=login.user_id)
            return

    async def _loop(self) -> None:
        moves_since: int | None = None  # None: look at every portal once, at start-up
        while True:
            await asyncio.sleep(LOOP_SECONDS)
            try:
                for key in await store.waiting(self.bridge.db):
                    if key in self.sessions:
                        session, login = self.sessions[key]
                        await self.flush(self.connectors[login.network], login, session)
                started = store.now_ms()
                await self.portals.check_moves(self.connectors, moves_since)
                # A little overlap: an opt-in committed while this pass ran is not missed.
                moves_since = started - MOVES_OVERLAP_MS
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("network.loop_failed")

    async def flush(self, connector: Connector, login: store.Login,
                    session: Session | None = None) -> None:
        await self.messages.flush_in(connector, login)
        found = session or self.session_of(connector.network, login.user_id)
        if found is not None and found.is_connected:
            await self.messages.flush_out(connector, login.user_id, found)

    def logged_in(self, user_id: str) -> bool:
        return any(user == user_id for _network, user in self.sessions)

    async def matrix_presence(self, user_id: str, state: str) -> None:
        """The user's Matrix presence changed: their contacts on each network see it."""
        for (_network, user), (session, _login) in list(self.sessions.items()):
            if user == user_id:
                with contextlib.suppress(Exception):  # presence is a hint, like typing
                    await session.set_presence(state)

    def session_of(self, network: str, user_id: str) -> Session | None:
        found = self.sessions.get((network, user_id))
        return found[0] if found else None

    async def tell(self, login: store.Login, text: str) -> None:
        """A notice to the user in their chat with the bot (each call its own)."""
        try:
            await self.bridge.outbox.record(Message(
                txn_id=f"mercato.contacts.tell.{uuid.uuid4().hex}", room_id=login.room_id,
                sender=self.bridge.bot.mxid, content={"msgtype": "m.notice", "body": text},
                kind=NOTICE))
        except Exception as e:
            log.warning("network.tell_failed", user_id=login.user_id, error=str(e))

    # -- what users ask for -----------------------------------------------------------------

    def connector(self, network: str) -> Connector:
        return self.connectors[network]

    async def login(self, network: str, user_id: str, room_id: str,
                    credentials: dict[str, str]) -> tuple[str, RosterOutcome]:
        """Log in, keep the credentials (encrypted) and import the roster."""
        connector = self.connector(network)
        existing = await store.login(self.bridge.db, network, user_id)
        running = self.sessions.get((network, user_id))
        if existing is not None and running is not None and running[0].is_connected:
            raise AlreadyLoggedIn(existing.account)
        # A stored login that does not connect (its password changed) is replaced.
        await self._stop_resuming(network, user_id)
        running = self.sessions.get((network, user_id))
        account = connector.parse_address(credentials[connector.credentials[0].name])
        credentials = {**credentials, connector.credentials[0].name: account}
        login = store.Login(network, user_id, account,
                            self.vault.seal(network, user_id, credentials), room_id)
        session = connector.session(credentials, _Events(self, connector, login))
        await session.connect(LOGIN_TIMEOUT)  # LoginFailed: nothing was kept
        if running is not None:
            await running[0].disconnect()
        await store.save_login(self.bridge.db, login)
        self.sessions[(network, user_id)] = (session, login)
        log.info("network.logged_in", network=network, user_id=user_id)
        outcome = await self.portals.import_roster(connector, login, await session.roster())
        return account, outcome

    async def import_roster(self, network: str, user_id: str) -> RosterOutcome:
        session, login = self._logged_in(network, user_id)
        return await self.portals.import_roster(self.connector(network), login,
                                                await session.roster())

    async def open_chat(self, network: str, user_id: str, address: str) -> store.Portal:
        _session, login = self._logged_in(network, user_id)
        connector = self.connector(network)
        remote_id = connector.parse_address(address)
        return await self.portals.ensure_portal(connector, login, RemoteContact(remote_id, ""))

    def _logged_in(self, network: str, user_id: str) -> tuple[Session, store.Login]:
        found = self.sessions.get((network, user_id))
        if found is None:
            raise NotLoggedIn(network)
        return found

    async def logout(self, network: str, user_id: str) -> bool:
        await self._stop_resuming(network, user_id)
        found = self.sessions.pop((network, user_id), None)
        if found is not None:
            await found[0].disconnect()
        removed = await store.delete_login(self.bridge.db, network, user_id)
        log.info("network.logged_out", network=network, user_id=user_id, had_login=removed)
        return removed or found is not None

    async def status(self, network: str, user_id: str) -> tuple[str, bool] | None:
        login = await store.login(self.bridge.db, network, user_id)
        if login is None:
            return None
        session = self.session_of(network, user_id)
        return login.account, bool(session and session.is_connected)

    # -- Matrix events in portals -----------------------------------------------------------

    async def handles(self, room_id: Any) -> bool:
        if not isinstance(room_id, str):
            return False
        await self.ready.wait()
        return room_id in self.portals.rooms

    async def matrix_event(self, raw: dict[str, Any]) -> None:
        if raw.get("type") != EventType.ROOM_MESSAGE.t:
            return
        portal = await store.portal_by_room(self.bridge.db, raw["room_id"])
        if portal is None or raw.get("sender") != portal.user_id:
            return  # the ghost's own messages, or someone else in the room
        connector = self.connectors.get(portal.network)
        if connector is None:
            return
        login = await store.login(self.bridge.db, portal.network, portal.user_id)
        if login is None:
            notice = {"msgtype": "m.notice",
                      "body": f"Not sent: you are logged out of {connector.label}. Type "
                              f"`{connector.network} login` in your chat with the contacts "
                              "bot."}
            await self.bridge.outbox.record(Message(
                txn_id=f"mercato.contacts.loggedout.{raw['event_id']}", room_id=portal.room_id,
                sender=portal.ghost_id, content=notice, kind=NOTICE))
            return
        # The message itself ends the typing on XMPP ("active"); its stop need not follow.
        self._typing.discard(portal.room_id)
        await self.messages.outgoing(connector, portal, raw,
                                     self.session_of(portal.network, portal.user_id))

    async def matrix_typing(self, room_id: str, user_ids: list[str]) -> None:
        """Who types in a portal changed: tell the contact when its user starts or stops."""
        portal = await store.portal_by_room(self.bridge.db, room_id)
        if portal is None:
            return
        typing = portal.user_id in user_ids
        if typing == (room_id in self._typing):
            return  # someone else (the ghost) started or stopped
        if typing:
            self._typing.add(room_id)
        else:
            self._typing.discard(room_id)
        session = self.session_of(portal.network, portal.user_id)
        if session is not None and session.is_connected:
            with contextlib.suppress(Exception):  # typing is a hint; never worth a retry
                await session.set_typing(RemoteID(portal.remote_id), typing)
