"""One user's XMPP account, connected through slixmpp.

Stanzas arrive in slixmpp's callbacks; they are queued in arrival order and handed to
the core one at a time by a single task, so the core sees a contact's messages in the
order they were sent (and offline messages, delivered at log-in, before newer ones).

At every (re)connect, before the initial presence makes the server deliver anything,
the session reads the account's message archive (XEP-0313) from the last position the
core recorded: whatever the server handed to an earlier connection that died before
the core kept it comes again, oldest first (the core drops what it already has).
Carbons (XEP-0280) bring what the user's other apps send and receive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.plugins.xep_0363.http_upload import FileUploadError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from bridges.contacts.connectors.base import (
    Attachment,
    IncomingMessage,
    LoginFailed,
    OutgoingMessage,
    RemoteContact,
    RemoteID,
    RemoteMessageID,
    Session,
    SessionEvents,
)
from bridges.contacts.connectors.xmpp import XmppSettings, normalise_jid
from mercato.logging import get_logger

log = get_logger(__name__)
# slixmpp logs every stanza it sends and receives at DEBUG: message text, and with PLAIN
# the password. Never, whatever level the operator chose for Mercato.
logging.getLogger("slixmpp.xmlstream").setLevel(logging.INFO)

PLUGINS = ("xep_0030", "xep_0054", "xep_0066", "xep_0085", "xep_0199", "xep_0203",
           "xep_0280", "xep_0313", "xep_0359", "xep_0363", "xep_0461")
MAM = "urn:xmpp:mam:2"
STANZA_ID = "{urn:xmpp:sid:0}stanza-id"
ARCHIVE_PAGE = 50
# Archived messages read at one (re)connect; the next one goes on from there.
ARCHIVE_MAX = 2000
ARCHIVE_TIMEOUT = 20
UPLOAD_TIMEOUT = 60.0
RECONNECT_MAX_SECONDS = 60.0
VCARD_TIMEOUT = 5.0
VCARD_CONCURRENCY = 4
# The user's Matrix presence as XMPP shows it (RFC 6121 <show/>; "" is plain available).
PRESENCE_SHOW = {"online": "", "unavailable": "away", "offline": "xa"}
MAX_AVATAR_BYTES = 1024 * 1024


@dataclass(frozen=True)
class _Received:
    stanza: Any  # the message itself (unwrapped from a carbon or an archive result)
    position: str | None  # its ID in the user's archive, if the server keeps one
    archived_ms: int | None = None  # when the archive got it (for messages read from it)


def message_id(stanza: Any, archive_id: str | None = None) -> str:
    """The ID the sender gave (origin-id, else the stanza's), else the user's server's
    archive ID for it (the same live and from the archive), else one derived from it."""
    given = stanza["origin_id"]["id"] or stanza["id"] or archive_id
    if given:
        return str(given)
    stamp = str(stanza["delay"]["stamp"] or "")
    body = f"{stanza['from'].bare}\n{stamp}\n{stanza['body']}".encode()
    return "body-" + hashlib.sha256(body).hexdigest()[:32]


def _timestamp_ms(stanza: Any) -> int | None:
    stamp = stanza["delay"]["stamp"] if stanza.xml.find(
        "{urn:xmpp:delay}delay") is not None else None
    return int(stamp.timestamp() * 1000) if stamp else None


class XmppSession(Session):
    def __init__(self, settings: XmppSettings, jid: str, password: str,
                 events: SessionEvents) -> None:
        self.settings = settings
        self.jid = jid
        self.password = password
        self.events = events
        self._client: slixmpp.ClientXMPP | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._online = False
        self._show = ""  # the user's Matrix presence, as <show/>
        self._stopping = False
        self._failures = 0
        # While the archive is read, live messages wait here (they are newer).
        self._catching_up = False
        self._held: list[_Received] = []
        self._queries: dict[str, list[Any]] = {}  # archive query ID → results so far

    @property
    def account(self) -> RemoteID:
        return RemoteID(self.jid)

    @property
    def is_connected(self) -> bool:
        return self._online

    # -- connecting ---------------------------------------------------------------------

    def _new_client(self) -> slixmpp.ClientXMPP:
        domain = self.jid.rpartition("@")[2]
        address = self.settings.address_of(domain)
        plaintext = self.settings.plaintext_allowed(address[0] if address else None)
        plugin_config = {"feature_mechanisms": {"unencrypted_scram": True}} if plaintext else {}
        client = slixmpp.ClientXMPP(f"{self.jid}/{self.settings.resource}", self.password,
                                    plugin_config=plugin_config)
        if plaintext:
            client.enable_plaintext = True
            client.enable_starttls = False
            client.enable_direct_tls = False
        for plugin in PLUGINS:
            client.register_plugin(plugin)
        client.add_event_handler("session_start", self._on_session_start)
        client.add_event_handler("failed_auth", self._on_failed_auth)
        client.add_event_handler("connection_failed", self._on_connection_failed)
        client.add_event_handler("disconnected", self._on_disconnected)
        client.add_event_handler("message", lambda m: self._arrived(m))
        client.add_event_handler("carbon_received", lambda m: self._arrived(m["carbon_received"]))
        client.add_event_handler("carbon_sent", lambda m: self._arrived(m["carbon_sent"]))
        client.register_handler(Callback("mercato archive", MatchXPath(
            f"{{jabber:client}}message/{{{MAM}}}result"), self._on_archived))
        for state in ("composing", "paused", "active", "inactive", "gone"):
            client.add_event_handler(f"chatstate_{state}",
                                     lambda m: self._queue.put_nowait(("chatstate", m)))
        client.add_event_handler("presence_available",
                                 lambda p: self._queue.put_nowait(("online", p)))
        client.add_event_handler("presence_unavailable",
                                 lambda p: self._queue.put_nowait(("offline", p)))
        self._address = address
        return client

    async def connect(self, timeout: float) -> None:
        self._stopping = False
        self._client = self._new_client()
        self._started = asyncio.get_running_loop().create_future()
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name=f"xmpp-{self.jid}")
        self._client.connect(*(self._address or (None, None)))
        try:
            await asyncio.wait_for(asyncio.shield(self._started), timeout)
        except TimeoutError:
            await self.disconnect()
            raise LoginFailed("the XMPP server did not answer in time; check the address or "
                              "try again later", retry=True) from None
        except LoginFailed:
            await self.disconnect()
            raise

    def _settle(self, error: LoginFailed | None) -> None:
        if self._started is not None and not self._started.done():
            if error is None:
                self._started.set_result(None)
            else:
                self._started.set_exception(error)

    async def _on_session_start(self, _event: Any) -> None:
        client = self._client
        assert client is not None
        try:
            await client.get_roster()
        except (IqError, IqTimeout) as e:
            log.warning("xmpp.roster_failed", account=self.jid, error=str(e))
        # Logged in: a long catch-up must not make the login look like it timed out.
        self._online = True
        self._failures = 0
        self._settle(None)
        self._catching_up = True
        try:
            await self._enable_carbons(client)
            await self._catch_up(client)
        except Exception:  # never a reason to stay offline: offline storage still delivers
            log.exception("xmpp.catch_up_failed", account=self.jid)
        finally:
            self._catching_up = False
            for item in self._held:
                self._queue.put_nowait(("message", item))
            self._held.clear()
        # Initial presence: the server now delivers what it stored while we were away.
        self._send_presence(client)
        self._queue.put_nowait(("connected", None))

    def _on_failed_auth(self, _event: Any) -> None:
        error = LoginFailed("the XMPP server refused that address and password")
        if self._started is not None and self._started.done():
            self._queue.put_nowait(("refused", error.message))
            self._stopping = True
        self._settle(error)

    def _on_connection_failed(self, event: Any) -> None:
        self._settle(LoginFailed(f"could not reach the XMPP server of {self.jid} ({event})",
                                 retry=True))

    async def _on_disconnected(self, reason: Any) -> None:
        was_online, self._online = self._online, False
        if was_online:
            self._queue.put_nowait(("disconnected", str(reason or "connection closed")))
        if self._stopping or self._started is None or not self._started.done() or \
                self._started.exception() is not None:
            return
        self._failures += 1
        await asyncio.sleep(min(RECONNECT_MAX_SECONDS, 2.0 ** min(self._failures, 6)))
        if not self._stopping and self._client is not None:
            log.info("xmpp.reconnecting", account=self.jid, attempt=self._failures)
            self._client.connect(*(self._address or (None, None)))

    async def disconnect(self) -> None:
        self._stopping = True
        self._online = False
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(wait=1.0), 3.0)
            client.abort()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    # -- the archive and carbons ---------------------------------------------------------

    def _archive_id(self, stanza: Any) -> str | None:
        """The ID the user's own server's archive gave the message (XEP-0359), if any."""
        for found in stanza.xml.findall(STANZA_ID):
            if found.get("by") == self.jid and found.get("id"):
                return str(found.get("id"))
        return None

    def _arrived(self, stanza: Any) -> None:
        item = _Received(stanza, self._archive_id(stanza))
        if self._catching_up:
            self._held.append(item)
        else:
            self._queue.put_nowait(("message", item))

    def _on_archived(self, result: Any) -> None:
        if result["from"] and result["from"].bare != self.jid:
            return  # only the user's own archive answers the session's queries
        found = self._queries.get(str(result["mam_result"]["queryid"]))
        if found is not None:
            found.append(result)

    async def _enable_carbons(self, client: slixmpp.ClientXMPP) -> None:
        try:
            await client.plugin["xep_0280"].enable(timeout=ARCHIVE_TIMEOUT)
        except (IqError, IqTimeout) as e:  # an old server: only what reaches the bridge
            log.info("xmpp.no_carbons", account=self.jid, error=type(e).__name__)

    async def _archive_page(self, client: slixmpp.ClientXMPP, after: str | None,
                            latest: bool = False) -> tuple[list[Any], bool, str | None]:
        """One page of the archive after `after` (or its last message): the results, whether
        it was the end, and the ID of the last one."""
        iq = client.make_iq_set()
        iq["mam"]["queryid"] = iq["id"]
        iq["mam"]["rsm"]["max"] = "1" if latest else str(ARCHIVE_PAGE)
        if latest:
            iq["mam"]["rsm"]["before"] = True
        elif after:
            iq["mam"]["rsm"]["after"] = after
        results = self._queries[str(iq["id"])] = []
        try:
            answer = await iq.send(timeout=ARCHIVE_TIMEOUT)
        finally:
            self._queries.pop(str(iq["id"]), None)
        fin = answer["mam_fin"]
        return results, fin["complete"] in ("true", "1"), fin["rsm"]["last"] or None

    async def _catch_up(self, client: slixmpp.ClientXMPP) -> None:
        """Queue what the archive holds after the last message the core recorded."""
        try:
            info = await client.plugin["xep_0030"].get_info(jid=slixmpp.JID(self.jid),
                                                             timeout=ARCHIVE_TIMEOUT)
            if MAM not in info["disco_info"]["features"]:
                log.info("xmpp.no_archive", account=self.jid)
                return
            position = await self.events.position()
            if position is None:  # the first login: the history starts now
                _results, _end, last = await self._archive_page(client, None, latest=True)
                await self.events.reached(last or "")
                return
            after, read = position or None, 0
            while read < ARCHIVE_MAX:
                results, end, last = await self._archive_page(client, after)
                for result in results:
                    forwarded = result["mam_result"]["forwarded"]
                    stamp = forwarded["delay"]["stamp"]
                    self._queue.put_nowait(("message", _Received(
                        forwarded["stanza"], str(result["mam_result"]["id"]),
                        int(stamp.timestamp() * 1000) if stamp else None)))
                read += len(results)
                if end or not results or not last:
                    break
                after = last
            log.info("xmpp.caught_up", account=self.jid, messages=read)
        except IqError as e:
            if e.iq["error"]["condition"] != "item-not-found":
                log.warning("xmpp.catch_up_failed", account=self.jid,
                            error=e.iq["error"]["condition"])
                return
            # The position left the archive (expired): go on from its end; offline
            # storage still brings what came meanwhile.
            log.warning("xmpp.archive_position_gone", account=self.jid)
            _results, _end, last = await self._archive_page(client, None, latest=True)
            await self.events.reached(last or "")
        except IqTimeout:
            log.warning("xmpp.catch_up_failed", account=self.jid, error="timeout")

    # -- what arrives ---------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            kind, stanza = await self._queue.get()
            try:
                await self._handle(kind, stanza)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Kept by the core before it failed, or lost with a log line saying so.
                log.exception("xmpp.event_failed", account=self.jid, kind=kind)

    async def _handle(self, kind: str, stanza: Any) -> None:
        if kind == "connected":
            await self.events.connected()
        elif kind in ("disconnected", "refused"):
            await self.events.disconnected(stanza, refused=kind == "refused")
        elif kind == "message":
            message = self._incoming(stanza)
            if message is not None:
                await self.events.message(message)
            elif stanza.position is not None:
                await self.events.reached(stanza.position)
        elif kind == "chatstate":
            contact = RemoteID(stanza["from"].bare)
            await self.events.typing(contact, stanza["chat_state"] == "composing")
        elif kind in ("online", "offline"):
            contact = RemoteID(stanza["from"].bare)
            if contact != self.jid:
                await self.events.presence(contact, kind == "online")

    def _incoming(self, item: _Received) -> IncomingMessage | None:
        stanza = item.stanza
        if stanza["type"] not in ("chat", "normal"):
            return None  # group chats, errors and headlines are not bridged
        url = stanza["oob"]["url"] if stanza.xml.find("{jabber:x:oob}x") is not None else ""
        body = stanza["body"] or ""
        if not body and not url:
            return None
        sender, from_me = stanza["from"].bare, False
        if sender == self.jid:  # the user wrote it, from another app (a carbon, the archive)
            if stanza["from"].resource == self.settings.resource:
                return None  # the bridge itself, for Matrix
            sender, from_me = stanza["to"].bare, True
        if not sender or sender == self.jid:
            return None
        reply = stanza["reply"]["id"] if stanza.xml.find(
            "{urn:xmpp:reply:0}reply") is not None else None
        attachment = Attachment(url=url, name=url.rsplit("/", 1)[-1]) if url else None
        if attachment is not None and body.strip() == url:
            body = ""  # the usual fallback body of a file is its URL
        return IncomingMessage(RemoteID(normalise_jid(sender)),
                               RemoteMessageID(message_id(stanza, item.position)), body,
                               reply_to=RemoteMessageID(reply) if reply else None,
                               attachment=attachment,
                               timestamp_ms=_timestamp_ms(stanza) or item.archived_ms,
                               from_me=from_me, position=item.position)

    # -- what the user does ---------------------------------------------------------------

    async def roster(self) -> list[RemoteContact]:
        if self._client is None:
            return []
        roster = self._client.client_roster
        jids = [jid for jid in roster if jid != self.jid
                and roster[jid]["subscription"] != "remove"]
        limit = asyncio.Semaphore(VCARD_CONCURRENCY)

        async def contact(jid: str) -> RemoteContact:
            async with limit:
                return await self._contact(jid, roster[jid]["name"] or "")
        return list(await asyncio.gather(*(contact(jid) for jid in sorted(jids))))

    async def _contact(self, jid: str, name: str) -> RemoteContact:
        """A roster entry with what its vCard adds: a name, addresses, a photo."""
        assert self._client is not None
        emails: list[str] = []
        phones: list[str] = []
        avatar, avatar_type = None, ""
        try:
            iq = await self._client.plugin["xep_0054"].get_vcard(slixmpp.JID(jid),
                                                                 timeout=VCARD_TIMEOUT)
            card = iq["vcard_temp"]
            name = name or card["FN"] or ""
            emails = [e["USERID"] for e in card["emails"] if e["USERID"]]
            phones = [t["NUMBER"] for t in card["telephone_numbers"] if t["NUMBER"]]
            photo = card["PHOTO"]
            binval = photo["BINVAL"] if photo.xml.find("{vcard-temp}BINVAL") is not None \
                else None
            if binval and len(binval) <= MAX_AVATAR_BYTES:
                avatar, avatar_type = bytes(binval), photo["TYPE"] or "image/png"
        except (IqError, IqTimeout):
            pass  # no vCard, or none we may read: the roster name is enough
        return RemoteContact(RemoteID(normalise_jid(jid)), name, emails=tuple(emails),
                             phones=tuple(phones), avatar=avatar, avatar_type=avatar_type)

    async def send(self, message: OutgoingMessage) -> None:
        client = self._client
        if client is None or not self._online:
            raise ConnectionError(f"{self.jid} is not connected")
        text, url = message.text, None
        if message.file is not None:
            url = await self._upload(client, message)
            text = url or text
        stanza = client.make_message(mto=message.contact, mbody=text, mtype="chat")
        if url:
            stanza["oob"]["url"] = url  # how XMPP clients know to show the file inline
        stanza["id"] = message.message_id
        stanza["origin_id"]["id"] = message.message_id
        if message.reply_to:
            stanza["reply"]["id"] = message.reply_to
            stanza["reply"]["to"] = message.contact
        stanza["chat_state"] = "active"
        stanza.send()

    async def _upload(self, client: slixmpp.ClientXMPP, message: OutgoingMessage) -> str | None:
        """The file on the user's server's upload service (XEP-0363): its URL, or None
        when the server takes no uploads (the message's text goes instead)."""
        assert message.file is not None
        try:
            return str(await client.plugin["xep_0363"].upload_file(
                message.file.name, size=len(message.file.data),
                content_type=message.file.mimetype, input_file=io.BytesIO(message.file.data),
                timeout=UPLOAD_TIMEOUT))
        except (FileUploadError, IqError, IqTimeout, aiohttp.ClientError, TimeoutError) as e:
            log.info("xmpp.upload_failed", account=self.jid, error=type(e).__name__)
            return None

    async def set_presence(self, state: str) -> None:
        show = PRESENCE_SHOW.get(state, "")
        if show == self._show:
            return
        self._show = show
        if self._client is not None and self._online:
            self._send_presence(self._client)

    def _send_presence(self, client: slixmpp.ClientXMPP) -> None:
        """Available, or away while the user is not at their Matrix client: the bridge
        stays connected either way (it still receives for them)."""
        if self._show:
            client.send_presence(pshow=self._show)
        else:
            client.send_presence()

    async def set_typing(self, contact: RemoteID, typing: bool) -> None:
        if self._client is None or not self._online:
            return
        stanza = self._client.make_message(mto=contact, mtype="chat")
        stanza["chat_state"] = "composing" if typing else "paused"
        stanza.send()
