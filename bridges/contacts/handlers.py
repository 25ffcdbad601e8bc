"""What the contacts bot does with the events of its direct chats.

- A file (vCard or CSV) is read as it streams from the media repository, matched, and
  answered with a summary; the matches are kept (as Matrix IDs) so that a ✅ reaction
  or `dm all` can open chats with them.
- Text is a command (`findable phone …`, `region NO`, `dm all`, `help`).
- Encrypted messages get a sentence saying the bot cannot read them.

A confirmed match (✅, `dm …`) or a converted invite becomes a chat the bridge opens
between the two people and lists in the asker's "Contacts" space (space.py); the bot
leaves each chat once one of them joins, so it is theirs alone.

Every answer goes through the bridge's outbox (mercato/matrix/outbox.py), its txnId
derived from the event answered. An import summary with matches is kept, with its ✅
seed reaction, when the outbox has sent it (`summary_sent`): the handler does not wait.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import aiohttp
from mautrix.appservice import IntentAPI
from mautrix.errors import MatrixRequestError
from mautrix.types import EventID, RoomID, UserID

from bridges.contacts import policy, summary
from bridges.contacts.commands import ContactsContext, region_for, registry
from bridges.contacts.db import store
from bridges.contacts.discovery import ContactImport, Discovery
from bridges.contacts.importers import ImportFailed
from bridges.contacts.importers.model import safe_label
from bridges.contacts.links import bridge_public_url, matrix_to
from bridges.contacts.media import MediaError, TooLarge, stream_media
from bridges.contacts.space import ContactsSpaces
from bridges.contacts.verification import CodeSender, HomeserverThreepids
from mercato.commands import Reply, strip_reply_fallback
from mercato.config import MercatoConfig
from mercato.db import Database
from mercato.faults import fault_point
from mercato.logging import get_logger
from mercato.matrix.html import sanitize_html
from mercato.matrix.outbox import Message, Outbox, Outgoing

log = get_logger(__name__)

SUMMARY_RETENTION_MS = 7 * 24 * 3600 * 1000
ENCRYPTED_NOTICE = (
    "This chat is encrypted, and I cannot read encrypted messages or files. Start a new chat "
    "with me with encryption turned off (Element does that by itself for me), or ask the "
    "operator to import your file with `mercato contacts import`.")
# The kinds of message the bot sends from here (the outbox's `kind`).
REPLY = "reply"
SUMMARY = "summary"
SEED_REACTION = "seed_reaction"
INVITE_NOTICE = "invite_notice"


class BridgeMatrix(Protocol):
    """What the handlers need from the running appservice."""

    config: MercatoConfig
    db: Database
    outbox: Outbox

    @property
    def bot(self) -> IntentAPI: ...

    @property
    def bot_mxid(self) -> UserID: ...

    def http_session(self) -> aiohttp.ClientSession: ...

    async def is_direct(self, room_id: RoomID) -> bool: ...


@dataclass
class Attachment:
    mxc: str
    filename: str
    size: int | None
    encrypted: bool

    @classmethod
    def of(cls, content: dict[str, Any]) -> Attachment | None:
        if content.get("msgtype") != "m.file":
            return None
        info: dict[str, Any] = content["info"] if isinstance(content.get("info"), dict) else {}
        encrypted = isinstance(content.get("file"), dict)
        mxc = (content["file"].get("url") if encrypted else content.get("url")) or ""
        size = info.get("size") if isinstance(info.get("size"), int) else None
        name = content.get("filename") or content.get("body") or ""
        return cls(str(mxc), safe_label(str(name)) or "your file", size, encrypted)


def _content(reply: Reply, reply_to: str | None) -> dict[str, Any]:
    content: dict[str, Any] = {"msgtype": "m.notice", "body": reply.text}
    if reply.html:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = sanitize_html(reply.html)
    if reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    return content


class ContactsHandlers:
    # What commands declared elsewhere (network connectors) find in `ctx.extra`.
    command_extra: Mapping[str, Any] = MappingProxyType({})

    def __init__(self, bridge: BridgeMatrix, discovery: Discovery, *,
                 codes: CodeSender | None = None,
                 threepids: HomeserverThreepids | None = None,
                 spaces: ContactsSpaces | None = None) -> None:
        self.bridge = bridge
        self.discovery = discovery
        self.spaces = spaces
        self.codes = codes
        self.threepids = threepids
        bridge.outbox.on_sent(SUMMARY, self.summary_sent)

    @property
    def config(self) -> MercatoConfig:
        return self.bridge.config

    async def reply(self, room_id: str, reply: Reply, *, to: str | None, txn: str,
                    kind: str = REPLY, subject: str | None = None) -> None:
        # The txn ID comes from the event answered: a retried event is not answered twice.
        await self.bridge.outbox.record(Message(
            txn_id=f"mercato.contacts.{txn}", room_id=room_id, sender=self.bridge.bot_mxid,
            content=_content(reply, to), kind=kind, subject=subject))

    async def summary_sent(self, message: Outgoing, event_id: str) -> None:
        """A summary with matches is sent: keep them for ✅ and `dm all`, and seed the ✅.
        Idempotent, as an outbox hook must be."""
        if not message.subject:
            return
        kept = json.loads(message.subject)
        await store.save_summary(self.bridge.db, event_id, kept["user_id"], message.room_id,
                                 kept["matches"])
        await self.bridge.outbox.record(Message(
            txn_id=f"mercato.contacts.seed.{event_id}", room_id=message.room_id,
            sender=self.bridge.bot_mxid, event_type="m.reaction", kind=SEED_REACTION,
            content={"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id,
                                      "key": summary.CONFIRM_KEY}}))

    # -- messages ---------------------------------------------------------------------------

    async def message(self, raw: dict[str, Any]) -> None:
        content: dict[str, Any] = raw["content"] if isinstance(raw.get("content"), dict) else {}
        room_id, sender, event_id = raw["room_id"], raw["sender"], raw["event_id"]
        attachment = Attachment.of(content)
        if attachment is not None:
            if await self.bridge.is_direct(RoomID(room_id)):
                await self.file(room_id, sender, event_id, attachment)
            return
        if content.get("msgtype") != "m.text" or not isinstance(content.get("body"), str):
            return
        relation = content.get("m.relates_to")
        if isinstance(relation, dict) and relation.get("rel_type") == "m.replace":
            return  # an edit: answering it again would repeat the first answer
        ctx = ContactsContext(sender=sender, room_id=room_id, event_id=event_id,
                              direct=await self.bridge.is_direct(RoomID(room_id)),
                              db=self.bridge.db, discovery=self.discovery,
                              default_region=self.config.contacts.default_region,
                              extra=dict(self.command_extra),
                              public_url=bridge_public_url(self.config),
                              homeserver_verified=self.threepids.verified
                              if self.threepids else None,
                              codes=self.codes, server_name=self.config.server_name,
                              open_chats=self._chat_opener(sender))
        outcome = await registry.dispatch(strip_reply_fallback(content["body"]), ctx)
        if outcome is None:
            return
        log.info("command.done", command=outcome.command, ok=outcome.ok, sender=sender)
        await self.reply(room_id, outcome.reply, to=event_id, txn=f"reply.{event_id}")
        for invite in ctx.converted:
            await self.tell_inviter(invite, sender, await self._open_chat(invite.inviter,
                                                                          sender))
        if ctx.held_identifier:
            await self._redact_quietly(room_id, event_id)

    def _chat_opener(self, user_id: str) -> Callable[[list[str]], Awaitable[dict[str, str]]] \
            | None:
        spaces = self.spaces
        if spaces is None:
            return None

        async def open_chats(others: list[str]) -> dict[str, str]:
            return await spaces.open_chats(user_id, others)
        return open_chats

    async def _open_chat(self, user_id: str, other: str) -> str | None:
        """A chat between the two in `user_id`'s Contacts space; None if it failed (the
        links in the messages still let them start one)."""
        if self.spaces is None:
            return None
        try:
            return await self.spaces.open_chat(user_id, other)
        except MatrixRequestError as e:
            log.warning("chat.open_failed", user_id=user_id, other=other, errcode=e.errcode)
            return None

    async def tell_inviter(self, invite: store.Invite, joined: str,
                           room_id: str | None = None) -> None:
        """The inviter learns who joined, with the chat the bridge opened for them."""
        when = time.strftime("%d %b %Y", time.gmtime(invite.created_at / 1000))
        if room_id:
            link = summary.room_link(room_id, self.config.server_name)
            how = (f"I opened a chat between you (in your “Contacts” space): {link} — "
                   "accept the invitation to start.")
            how_html = (f'I opened a <a href="{html.escape(link)}">chat between you</a> (in '
                        "your “Contacts” space): accept the invitation to start.")
        else:
            how = how_html = ("Tap the link and choose “Message” to start a chat; I gave "
                              "them a link to you too.")
        text = (f"Someone you invited on {when} has joined: {joined} — {matrix_to(joined)}. "
                + how)
        html_text = (f"Someone you invited on {when} has joined: "
                     f'<a href="{html.escape(matrix_to(joined))}">{html.escape(joined)}</a>. '
                     + how_html)
        # If the inviter left that chat, the outbox gives up on it (logged `outbox.parked`).
        await self.reply(invite.room_id, Reply(text, html_text), to=None,
                         txn=f"invite.converted.{invite.code}", kind=INVITE_NOTICE)

    async def _redact_quietly(self, room_id: str, event_id: str) -> None:
        """Take a message holding a phone number or email out of the chat, if allowed."""
        try:
            await self.bridge.bot.redact(RoomID(room_id), EventID(event_id),
                                         reason="It held a phone number or email address; "
                                                "the contacts bridge keeps only a keyed hash.")
        except MatrixRequestError as e:  # no power to redact in this room: it stays
            log.info("command.not_redacted", room_id=room_id, errcode=e.errcode)

    async def encrypted(self, raw: dict[str, Any]) -> None:
        hour = int(time.time() // 3600)
        await self.reply(raw["room_id"], Reply(ENCRYPTED_NOTICE), to=None,
                         txn=f"encrypted.{raw['room_id']}.{hour}")

    # -- files ------------------------------------------------------------------------------

    async def file(self, room_id: str, sender: str, event_id: str,
                   attachment: Attachment) -> None:
        limits = self.discovery.limits
        megabytes = limits.max_upload_bytes / 2**20
        if attachment.encrypted:
            await self.reply(room_id, Reply(ENCRYPTED_NOTICE), to=event_id,
                             txn=f"summary.{event_id}")
            return
        if attachment.size is not None and attachment.size > limits.max_upload_bytes:
            await self._refuse_size(room_id, sender, event_id, megabytes)
            return
        ctx = ContactsContext(sender=sender, room_id=room_id, db=self.bridge.db,
                              default_region=self.config.contacts.default_region)
        contact_import = ContactImport(self.discovery.hasher.digest, limits,
                                       region=await region_for(ctx))
        try:
            async for chunk in stream_media(self.bridge.http_session(),
                                            self.config.homeserver_url,
                                            self.config.contacts.as_token, attachment.mxc,
                                            limits.max_upload_bytes):
                # Reading 10,000 contacts takes a moment: keep the event loop free meanwhile.
                await asyncio.to_thread(contact_import.feed, chunk)
                fault_point("contacts.import_chunk")  # part of the file read, nothing stored
                if contact_import.done:
                    break
            await asyncio.to_thread(contact_import.close)
        except TooLarge:
            await self._refuse_size(room_id, sender, event_id, megabytes)
            return
        except (ImportFailed, MediaError) as e:
            message = e.message if isinstance(e, ImportFailed) else str(e)
            log.info("import.unreadable", user_id=sender, source="dm",
                     kind=type(e).__name__)
            await store.record_run(self.bridge.db, sender, "dm", 0, 0, 0, "unreadable")
            await self.reply(room_id, Reply(f"I could not read {attachment.filename}: "
                                            f"{message}"), to=event_id, txn=f"summary.{event_id}")
            return
        outcome = await self.discovery.finish_import(contact_import, sender, source="dm",
                                                     import_id=event_id)
        fault_point("contacts.before_summary")  # charged and recorded, not yet answered
        answer = summary.import_summary(outcome, attachment.filename)
        # The matches are kept when the summary is sent (summary_sent): ✅ answers it.
        kept = json.dumps({"user_id": sender, "matches": [m.user_id for m in outcome.matches]}) \
            if outcome.matches else None
        await self.reply(room_id, answer, to=event_id, txn=f"summary.{event_id}", kind=SUMMARY,
                         subject=kept)

    async def _refuse_size(self, room_id: str, sender: str, event_id: str,
                           megabytes: float) -> None:
        log.info("import.refused", user_id=sender, source="dm", reason="too_large")
        await store.record_run(self.bridge.db, sender, "dm", 0, 0, 0, "too_large")
        await self.reply(room_id, Reply(
            f"That file is larger than {megabytes:.0f} MB, more than I read at once. Export "
            "your contacts without photos, or split the file and send the parts."),
            to=event_id, txn=f"summary.{event_id}")

    # -- reactions --------------------------------------------------------------------------

    async def reaction(self, raw: dict[str, Any]) -> None:
        relation = (raw.get("content") or {}).get("m.relates_to") or {}
        if relation.get("rel_type") != "m.annotation" or \
                relation.get("key") not in summary.CONFIRM_KEYS:
            return
        found = await store.summary(self.bridge.db, str(relation.get("event_id")))
        if found is None or found.user_id != raw["sender"]:
            return
        answer = summary.chat_links(found.matches)
        if self.spaces is not None:
            opened = await self.spaces.open_chats(found.user_id, found.matches)
            answer = summary.opened_chats(opened, len(found.matches), self.config.server_name)
        await self.reply(raw["room_id"], answer, to=found.event_id,
                         txn=f"links.{raw['event_id']}")

    async def prune(self) -> None:
        await store.prune_summaries(self.bridge.db, store.now_ms() - SUMMARY_RETENTION_MS)
        await store.prune_tokens(self.bridge.db)
        await store.prune_codes(self.bridge.db)
        await store.prune_quotas(self.bridge.db,
                                 policy.window_start(time.time()) - policy.DAY_SECONDS)
