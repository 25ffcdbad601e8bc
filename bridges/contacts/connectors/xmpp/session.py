"""One user's XMPP account, connected through slixmpp.

Stanzas arrive in slixmpp's callbacks; they are queued in arrival order and handed to
the core one at a time by a single task, so the core sees a contact's messages in the
order they were sent (and offline messages, delivered at log-in, before newer ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
from typing import Any

import aiohttp
import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.plugins.xep_0363.http_upload import FileUploadError

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
           "xep_0359", "xep_0363", "xep_0461")
UPLOAD_TIMEOUT = 60.0
RECONNECT_MAX_SECONDS = 60.0
VCARD_TIMEOUT = 5.0
VCARD_CONCURRENCY = 4
MAX_AVATAR_BYTES = 1024 * 1024


def message_id(stanza: Any) -> str:
    """The ID the sender gave (origin-id, else the stanza's), else one derived from it."""
    given = stanza["origin_id"]["id"] or stanza["id"]
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
        self._stopping = False
        self._failures = 0

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
        client.add_event_handler("message", lambda m: self._queue.put_nowait(("message", m)))
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
        assert self._client is not None
        try:
            await self._client.get_roster()
        except (IqError, IqTimeout) as e:
            log.warning("xmpp.roster_failed", account=self.jid, error=str(e))
        # Initial presence: the server now delivers what it stored while we were away.
        self._client.send_presence()
        self._online = True
        self._failures = 0
        self._settle(None)
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
        elif kind == "chatstate":
            contact = RemoteID(stanza["from"].bare)
            await self.events.typing(contact, stanza["chat_state"] == "composing")
        elif kind in ("online", "offline"):
            contact = RemoteID(stanza["from"].bare)
            if contact != self.jid:
                await self.events.presence(contact, kind == "online")

    def _incoming(self, stanza: Any) -> IncomingMessage | None:
        if stanza["type"] not in ("chat", "normal"):
            return None  # group chats, errors and headlines are not bridged
        url = stanza["oob"]["url"] if stanza.xml.find("{jabber:x:oob}x") is not None else ""
        body = stanza["body"] or ""
        if not body and not url:
            return None
        sender = stanza["from"].bare
        if not sender or sender == self.jid:
            return None
        reply = stanza["reply"]["id"] if stanza.xml.find(
            "{urn:xmpp:reply:0}reply") is not None else None
        attachment = Attachment(url=url, name=url.rsplit("/", 1)[-1]) if url else None
        if attachment is not None and body.strip() == url:
            body = ""  # the usual fallback body of a file is its URL
        return IncomingMessage(RemoteID(normalise_jid(sender)),
                               RemoteMessageID(message_id(stanza)), body,
                               reply_to=RemoteMessageID(reply) if reply else None,
                               attachment=attachment, timestamp_ms=_timestamp_ms(stanza))

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
            iq = await self._client.plugin["xep_0054"].get_vcard(jid, timeout=VCARD_TIMEOUT)
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

    async def set_typing(self, contact: RemoteID, typing: bool) -> None:
        if self._client is None or not self._online:
            return
        stanza = self._client.make_message(mto=contact, mtype="chat")
        stanza["chat_state"] = "composing" if typing else "paused"
        stanza.send()
