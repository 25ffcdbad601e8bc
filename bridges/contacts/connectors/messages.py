"""Messages both ways between a portal and its contact, neither lost nor doubled.

Every message is kept (`network_message`) before it is delivered and marked after:

- From the network: the row is keyed by the network's message ID, so a message the
  server hands over again (offline storage, the archive caught up from after a
  restart) is recognised; then the message's place in the account's history is kept,
  so a crash before the row was written is caught up from the server's archive. It is
  handed to the bridge's outbox (mercato/matrix/outbox.py) with a txnId derived from
  that ID: sent once, in the portal's order, with the network's time; the outbox's hook
  (`relayed`) records which Matrix event it became. A row an earlier run may have sent
  before the outbox kept it is first looked for in the room (`find_marked`).
- What the user wrote from another of their apps (carbons, the archive) arrives the
  same way and shows as a notice from the contact's ghost, "You (from another
  device): …": the bridge cannot post as the Matrix user.
- From Matrix: the event arrives through the appservice inbox (stored before Synapse
  got its 200), is kept under its event ID with the network message ID the bridge
  chose for it, and goes out when the session is connected — the same ID if resent.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiohttp
from mautrix.errors import MatrixError
from mautrix.types import Membership, RoomID, UserID

from bridges.contacts.connectors import store
from bridges.contacts.connectors.base import (
    Connector,
    IncomingMessage,
    OutgoingFile,
    OutgoingMessage,
    RemoteContact,
    RemoteID,
    RemoteMessageID,
    Session,
)
from bridges.contacts.connectors.portals import BridgeSide, Portals
from bridges.contacts.media import MediaError, stream_media
from mercato.commands import strip_reply_fallback
from mercato.faults import fault_point
from mercato.logging import get_logger
from mercato.matrix.outbox import Message, MessageParked, Outgoing
from mercato.matrix.sending import find_marked
from mercato.net import fetchable

log = get_logger(__name__)

IN, OUT = "in", "out"
FILE_TYPES = ("m.image", "m.file", "m.video", "m.audio")
FROM_ME = "You (from another device)"
RELAYED = "relayed"  # the outbox's kind of a network message; its subject: the row's seq
REPLY_WAIT_SECONDS = 10.0  # how long a reply waits for the message it answers to be sent


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]


def outgoing_id(event_id: str) -> RemoteMessageID:
    """The network message ID of a Matrix event: the same every time it is sent."""
    return RemoteMessageID(f"mercato-{_digest(event_id)}")


def incoming_txn(network: str, user_id: str, contact: str, message_id: str) -> str:
    # Synapse's appservice txn cache ignores the sender: the ID names everything.
    return f"mercato.contacts.{network}.in.{_digest(user_id, contact, message_id)}"


class Messages:
    def __init__(self, bridge: BridgeSide, portals: Portals) -> None:
        self.bridge = bridge
        self.portals = portals
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        # Inbound rows recorded by this run and not tried yet: no earlier send to look for.
        self._untried: set[int] = set()
        bridge.outbox.on_sent(RELAYED, self.relayed)

    def _lock(self, *key: str) -> asyncio.Lock:
        return self._locks.setdefault((key[0], key[1], key[2]), asyncio.Lock())

    # -- from the network -----------------------------------------------------------------

    async def incoming(self, connector: Connector, login: store.Login,
                       message: IncomingMessage) -> None:
        db = self.bridge.db
        payload: dict[str, Any] = {"text": message.text, "reply_to": message.reply_to,
                                   "ts": message.timestamp_ms}
        if message.attachment is not None:
            payload["file"] = {"url": message.attachment.url, "name": message.attachment.name,
                               "mimetype": message.attachment.mimetype}
        if message.from_me:
            payload["mine"] = True
        fault_point("network.before_record")
        if message.from_me and await store.sent_by_bridge(db, connector.network, login.user_id,
                                                          message.contact, message.message_id):
            seq = None  # what the bridge sent for Matrix, read back from the archive
        else:
            seq = await store.record(db, connector.network, login.user_id, message.contact,
                                     IN, message.message_id, payload)
            if seq is None:
                log.info("network.replay_ignored", network=connector.network,
                         user_id=login.user_id)
            else:
                self._untried.add(seq)
        if message.position is not None:  # only once the message is kept
            await store.set_position(db, connector.network, login.user_id, message.position)
        await self.flush_in(connector, login)

    async def flush_in(self, connector: Connector, login: store.Login) -> None:
        """Hand what arrived and is not in Matrix yet to the outbox, oldest first; stop at
        a failure."""
        async with self._lock(connector.network, login.user_id, IN):
            for row in await store.pending(self.bridge.db, connector.network, login.user_id,
                                           IN):
                txn_id = incoming_txn(connector.network, login.user_id, row.remote_id,
                                      row.remote_msg_id)
                if await self.bridge.outbox.state_of(txn_id) is not None:
                    continue  # in the outbox: `relayed` marks it when it is sent
                # An earlier run may have sent it before the outbox kept it: look first.
                look_first = row.seq not in self._untried
                self._untried.discard(row.seq)
                try:
                    await self._deliver_in(connector, login, row, txn_id, look_first)
                except (MatrixError, aiohttp.ClientError, OSError) as e:
                    log.warning("network.deliver_failed", network=connector.network,
                                user_id=login.user_id, error=str(e))
                    return  # kept: the next flush tries again, in order

    async def relayed(self, message: Outgoing, event_id: str) -> None:
        """The outbox sent a network message: its row records the Matrix event (again, if
        the process stopped in between)."""
        fault_point("network.after_deliver")  # sent to Matrix, not yet marked as sent
        if message.subject:
            await store.delivered(self.bridge.db, int(message.subject), event_id)

    async def _deliver_in(self, connector: Connector, login: store.Login,
                          row: store.Message, txn_id: str, look_first: bool) -> None:
        contact = RemoteID(row.remote_id)
        portal = await store.portal(self.bridge.db, connector.network, login.user_id, contact)
        if portal is None:  # someone outside the roster wrote: they get a portal too
            portal = await self.portals.ensure_portal(connector, login,
                                                      RemoteContact(contact, ""))
        payload = row.payload
        content: dict[str, Any] = {"msgtype": "m.text", "body": payload.get("text") or ""}
        if payload.get("mine"):  # the ghost tells what the user wrote elsewhere (a file: its link)
            said = "\n".join(part for part in (payload.get("text"),
                                                (payload.get("file") or {}).get("url")) if part)
            content = {"msgtype": "m.notice", "body": f"{FROM_ME}: {said}"}
        elif payload.get("file"):
            content = await self._file_content(connector, portal.ghost_id, payload["file"],
                                               payload.get("text") or "")
        if payload.get("reply_to"):
            replied = await self._replied(connector, login, contact, payload["reply_to"])
            if replied:
                content["m.relates_to"] = {"m.in_reply_to": {"event_id": replied}}
        ghost = self.bridge.intent_for(UserID(portal.ghost_id))
        user = UserID(login.user_id)
        if await self.bridge.state_store.get_membership(RoomID(portal.room_id),
                                                        user) == Membership.LEAVE:
            # They left the chat; a new message from the contact brings them back.
            await ghost.invite_user(RoomID(portal.room_id), user)
        found = await find_marked(ghost, portal.room_id, txn_id) if look_first else None
        if found:
            await store.delivered(self.bridge.db, row.seq, found)
            return
        await self.bridge.outbox.record(Message(
            txn_id=txn_id, room_id=portal.room_id, sender=portal.ghost_id, content=content,
            kind=RELAYED, subject=str(row.seq), timestamp=payload.get("ts") or None))

    async def _replied(self, connector: Connector, login: store.Login, contact: RemoteID,
                       reply_to: str) -> str | None:
        """The Matrix event of the message answered; if it is still in the outbox, once it
        is sent (or None after a short wait: the reply goes without the link)."""
        replied = await store.event_for(self.bridge.db, connector.network, login.user_id,
                                        contact, reply_to)
        txn_id = incoming_txn(connector.network, login.user_id, contact, reply_to)
        if replied or await self.bridge.outbox.state_of(txn_id) is None:
            return replied
        try:
            return await self.bridge.outbox.wait_sent(txn_id, REPLY_WAIT_SECONDS)
        except MessageParked:
            return None

    async def _file_content(self, connector: Connector, ghost_id: str, file: dict[str, str],
                            text: str) -> dict[str, Any]:
        """A file from the network, copied to the media repository (or its link, if not)."""
        url, name = file["url"], file.get("name") or "file"
        limit = connector.max_file_bytes
        try:
            if not await fetchable(url, connector.files_from_private_addresses):
                raise ValueError("not a public http(s) address")
            async with self.bridge.http_session().get(
                    url, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=60)) as resp:
                resp.raise_for_status()
                if resp.status != 200:
                    raise ValueError(f"answered {resp.status}")
                data = await resp.content.read(limit + 1)
                mimetype = file.get("mimetype") or resp.content_type or \
                    "application/octet-stream"
            if len(data) > limit:
                raise ValueError("too large")
        except (aiohttp.ClientError, ValueError, TimeoutError) as e:
            log.info("network.file_not_copied", network=connector.network, error=str(e))
            return {"msgtype": "m.text", "body": f"{text}\n{url}".strip()}
        ghost = self.bridge.intent_for(UserID(ghost_id))
        mxc = await ghost.upload_media(data, mimetype, name)
        msgtype = "m.image" if mimetype.startswith("image/") else "m.file"
        content: dict[str, Any] = {"msgtype": msgtype, "body": name, "url": mxc,
                                   "info": {"mimetype": mimetype, "size": len(data)}}
        if text:
            content["filename"], content["body"] = name, text
        return content

    # -- from Matrix ----------------------------------------------------------------------

    async def outgoing(self, connector: Connector, portal: store.Portal,
                       raw: dict[str, Any], session: Session | None) -> bool:
        """Keep a portal message for the network; False if it is not one to send."""
        content = raw.get("content") if isinstance(raw.get("content"), dict) else {}
        assert isinstance(content, dict)
        relation = content.get("m.relates_to") if isinstance(content.get("m.relates_to"),
                                                             dict) else {}
        assert isinstance(relation, dict)
        body = content.get("body")
        if not isinstance(body, str) or relation.get("rel_type") == "m.replace":
            return False  # edits are not bridged: the first version was sent
        msgtype = content.get("msgtype")
        file: dict[str, Any] | None = None
        if msgtype in FILE_TYPES:
            info = content.get("info") if isinstance(content.get("info"), dict) else {}
            assert isinstance(info, dict)
            name = str(content.get("filename") or body or "file")
            text = f"[{name}: a file sent on Mercato that could not be passed on]"
            if isinstance(content.get("url"), str):  # an encrypted file has none to fetch
                file = {"mxc": content["url"], "name": name,
                        "mimetype": str(info.get("mimetype") or "application/octet-stream")}
        elif msgtype == "m.emote":
            text = f"/me {body}"
        elif msgtype in ("m.text", "m.notice"):
            text = strip_reply_fallback(body)
        else:
            return False
        reply_event = (relation.get("m.in_reply_to") or {}).get("event_id")
        reply_to = await store.remote_for(self.bridge.db, reply_event) if reply_event else None
        await store.record(self.bridge.db, connector.network, portal.user_id, portal.remote_id,
                           OUT, outgoing_id(raw["event_id"]),
                           {"text": text, "reply_to": reply_to, "file": file},
                           event_id=raw["event_id"])
        if session is not None:
            await self.flush_out(connector, portal.user_id, session)
        return True

    async def flush_out(self, connector: Connector, user_id: str, session: Session) -> None:
        """Send what Matrix users wrote and the network has not got yet, oldest first."""
        async with self._lock(connector.network, user_id, OUT):
            for row in await store.pending(self.bridge.db, connector.network, user_id, OUT):
                if not session.is_connected:
                    return
                file = await self._matrix_file(connector, row.payload.get("file"))
                message = OutgoingMessage(RemoteID(row.remote_id),
                                          RemoteMessageID(row.remote_msg_id),
                                          row.payload.get("text") or "",
                                          reply_to=row.payload.get("reply_to"), file=file)
                try:
                    await session.send(message)
                except (ConnectionError, OSError) as e:
                    log.warning("network.send_failed", network=connector.network,
                                user_id=user_id, error=str(e))
                    return
                await store.delivered(self.bridge.db, row.seq)

    async def _matrix_file(self, connector: Connector,
                           file: dict[str, str] | None) -> OutgoingFile | None:
        """A Matrix user's file, read from the media repository (None: send the text)."""
        if not file:
            return None
        config = self.bridge.config
        chunks: list[bytes] = []
        try:
            async for chunk in stream_media(self.bridge.http_session(), config.homeserver_url,
                                            config.contacts.as_token, file["mxc"],
                                            connector.max_file_bytes):
                chunks.append(chunk)
        except (MediaError, aiohttp.ClientError, TimeoutError) as e:
            log.info("network.file_not_read", network=connector.network,
                     error=type(e).__name__)
            return None
        return OutgoingFile(file["name"], file["mimetype"], b"".join(chunks))
