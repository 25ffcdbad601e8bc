"""The customer-service inbox.

A buyer who opens a DM with a shop's Matrix user talks to the shop. Each
conversation is mirrored into the shop's private staff room as one thread;
staff reply in the thread and the buyer receives the reply from the shop's own
account, never from the staff member's. Auto-replies (welcome on first contact,
keywords, away outside opening hours) are set per shop.

Every relay uses a txnId derived from the source event and goes through the outbox
(recorded, then sent once in each room's order), so handling an event twice (after a
crash), or Synapse restarting mid-send, never shows the buyer or the staff a message
twice. The relay is recorded as relayed when the outbox has sent it (messages.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

from mautrix.types import Event as MatrixEvent
from mautrix.types import EventType, Membership, MessageEvent, StateEvent, UserID

from appservices.commerce import messages
from appservices.commerce.orders import chat as order_chat
from appservices.commerce.orders import staff_thread
from appservices.commerce.shops import rules as shop_rules
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action, role_can
from appservices.commerce.support import storage as support
from mercato.commands_text import strip_reply_fallback
from mercato.logging import get_logger
from mercato.matrix.appservice import membership_of
from mercato.matrix.html import sanitize_html
from mercato.matrix.outbox import Message, MessageParked

if TYPE_CHECKING:
    from appservices.commerce.service import CommerceAppService

log = get_logger(__name__)

AWAY_INTERVAL_MS = 4 * 3600 * 1000


def _relation(content: dict[str, Any]) -> dict[str, Any]:
    relation = content.get("m.relates_to")
    return relation if isinstance(relation, dict) else {}


def relayable_content(content: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A copy of a message's content that can be sent elsewhere: relations dropped,
    HTML re-sanitised, and an optional prefix naming who wrote it."""
    copy = {k: v for k, v in content.items()
            if k not in ("m.relates_to", "m.new_content", "m.mentions")}
    # A reply's fallback quotes the replied-to sender: a staff member's own ID must
    # never reach the buyer, so quoted lines and <mx-reply> blocks are dropped.
    body = strip_reply_fallback(str(copy.get("body", "")))
    if isinstance(copy.get("formatted_body"), str):
        copy["formatted_body"] = re.sub(r"(?is)<mx-reply>.*?</mx-reply>", "",
                                        copy["formatted_body"])
    copy["body"] = f"{prefix}{body}" if prefix else body
    if copy.get("format") == "org.matrix.custom.html" and isinstance(
            copy.get("formatted_body"), str):
        html = sanitize_html(copy["formatted_body"])
        copy["formatted_body"] = f"<b>{escape(prefix.strip())}</b> {html}" if prefix else html
    return copy


class SupportDesk:
    def __init__(self, service: CommerceAppService) -> None:
        self.service = service
        self.db = service.db

    async def _send(self, merchant: store.Merchant, room_id: str, content: dict[str, Any],
                    txn_id: str, kind: str, subject: str | None = None) -> None:
        """Record a message from the shop; the outbox sends it, after the room's earlier ones."""
        await self.service.messages.record(Message(
            txn_id=txn_id, room_id=room_id, sender=merchant.mxid, content=content, kind=kind,
            subject=subject))

    async def handle_event(self, event: MatrixEvent, raw: dict[str, Any]) -> bool:
        """True when the event belonged to a customer-service conversation."""
        if event.type == EventType.ROOM_MEMBER and isinstance(event, StateEvent):
            return await self._membership(event)
        if event.type != EventType.ROOM_MESSAGE or not isinstance(event, MessageEvent):
            return False
        sender = str(event.sender)
        if sender == self.service.bot_mxid or self.service.is_shop_user(sender):
            return False
        # One question first: most messages (in channels, in groups) are in neither kind
        # of room, and the inbox handles them one after another.
        if not await support.is_conversation_room(self.db, event.room_id):
            return False
        thread = await support.thread_for_dm(self.db, event.room_id)
        if thread is not None:
            await self._from_buyer(thread, event, raw.get("content") or {})
            return True
        merchant = await store.merchant_of_staff_room(self.db, event.room_id)
        if merchant is not None:
            await self._from_staff(merchant, event, raw.get("content") or {})
            return True
        return False

    # -- a buyer opens a conversation ----------------------------------------------------

    async def _membership(self, event: StateEvent) -> bool:
        target = str(event.state_key)
        if membership_of(event) != Membership.INVITE or not self.service.is_shop_user(target):
            return False
        merchant = await store.get_merchant_by_mxid(self.db, target)
        if merchant is None or merchant.status not in ("approved", "suspended"):
            # Only approval creates a shop user; declining as it would register one, so
            # anyone could conjure @shop_<anything> with an invite. The invite stays unanswered.
            log.info("support.invite_ignored", shop=target, room_id=event.room_id,
                     status=merchant.status if merchant else None)
            return True
        intent = self.service.intent_for(UserID(target))
        if event.room_id == merchant.staff_room_id or await store.get_channel(
                self.db, event.room_id):
            return True
        await intent.join_room(event.room_id)
        await support.open_thread(self.db, event.room_id, merchant.slug, str(event.sender))
        log.info("support.conversation_opened", slug=merchant.slug, buyer=event.sender)
        return True

    # -- buyer → staff --------------------------------------------------------------------

    async def _from_buyer(self, thread: support.SupportThread, event: MessageEvent,
                          raw: dict[str, Any]) -> None:
        merchant = await store.get_merchant(self.db, thread.merchant_slug)
        if merchant is None or str(event.sender) != thread.buyer_id:
            return
        if merchant.status == "suspended":
            notice = {"msgtype": "m.notice", "body": f"{merchant.name} is suspended on "
                      "Mercato and cannot answer messages right now."}
            await self._send(merchant, event.room_id, notice,
                             f"mercato.cs.suspended.{event.event_id}", messages.SUPPORT_NOTICE)
            return
        # A DM opened before shops had menus gets its menu when the buyer next writes.
        await self.service.menus.ensure_dm(merchant, event.room_id)
        # Ordering commands and checkout answers are the shop's to answer; the address and
        # phone typed at checkout never reach the staff room this way.
        if await order_chat.handle_buyer_message(self.db, self.service, merchant,
                                                 event.room_id, thread.buyer_id,
                                                 event.event_id, raw):
            return
        first_contact = thread.thread_event_id is None
        root = thread.thread_event_id or await self._open_staff_thread(merchant, thread)
        if not await support.relayed(self.db, event.event_id) and merchant.staff_room_id:
            content = relayable_content(raw, prefix=f"{thread.buyer_id}: ")
            content["m.relates_to"] = {"rel_type": "m.thread", "event_id": root,
                                       "is_falling_back": True,
                                       "m.in_reply_to": {"event_id": root}}
            await self._send(merchant, merchant.staff_room_id, content,
                             f"mercato.cs.in.{event.event_id}", messages.SUPPORT_RELAY,
                             messages.relay_subject(event.event_id, event.room_id, "in"))
        for reply in await self._auto_replies(merchant, thread, raw, first_contact):
            await self._send_auto_reply(merchant, thread, root, event.event_id, reply)

    async def _open_staff_thread(self, merchant: store.Merchant,
                                 thread: support.SupportThread) -> str:
        if not merchant.staff_room_id:
            raise RuntimeError(f"shop {merchant.slug} has no staff room")
        opening = {"msgtype": "m.text",
                   "body": f"💬 New conversation with {thread.buyer_id}. Reply in this thread "
                           "to answer as the shop."}
        # The buyer's messages are relayed into this thread: its event ID is needed now.
        try:
            root = await self.service.messages.send(Message(
                txn_id=f"mercato.cs.thread.{thread.dm_room_id}", room_id=merchant.staff_room_id,
                sender=merchant.mxid, content=opening, kind=messages.SUPPORT_THREAD,
                subject=thread.dm_room_id))
        except MessageParked as e:
            raise RuntimeError(f"the staff thread could not be opened: {e}") from None
        if root is None:  # the inbox handles the buyer's message again later
            raise RuntimeError("the staff thread is not opened yet: the homeserver is slow")
        return root

    async def _auto_replies(self, merchant: store.Merchant, thread: support.SupportThread,
                            content: dict[str, Any], first_contact: bool) -> list[tuple[str, str]]:
        replies: list[tuple[str, str]] = []
        if first_contact and merchant.welcome_message:
            replies.append(("welcome", merchant.welcome_message))
        keyword = shop_rules.keyword_reply(merchant.keyword_replies, str(content.get("body", "")))
        if keyword:
            replies.append(("keyword", keyword))
        now = datetime.now(UTC)
        if (merchant.away_message and not shop_rules.is_open(merchant.opening_hours, now)
                and store.now_ms() - thread.last_away_at > AWAY_INTERVAL_MS):
            replies.append(("away", merchant.away_message))
            await support.set_away_sent(self.db, thread.dm_room_id)
        return replies

    async def _send_auto_reply(self, merchant: store.Merchant, thread: support.SupportThread,
                               root: str, cause_event_id: str, reply: tuple[str, str]) -> None:
        kind, text = reply
        await self._send(merchant, thread.dm_room_id, {"msgtype": "m.text", "body": text},
                         f"mercato.cs.auto.{kind}.{cause_event_id}", messages.AUTO_REPLY)
        if merchant.staff_room_id:
            mirror = {"msgtype": "m.notice", "body": f"↪ {kind} auto-reply sent: {text}",
                      "m.relates_to": {"rel_type": "m.thread", "event_id": root,
                                       "is_falling_back": True,
                                       "m.in_reply_to": {"event_id": root}}}
            await self._send(merchant, merchant.staff_room_id, mirror,
                             f"mercato.cs.automirror.{kind}.{cause_event_id}",
                             messages.SUPPORT_NOTICE)

    # -- staff → buyer --------------------------------------------------------------------

    async def _from_staff(self, merchant: store.Merchant, event: MessageEvent,
                          raw: dict[str, Any]) -> None:
        relation = _relation(raw)
        if relation.get("rel_type") != "m.thread":
            return  # staff talking among themselves
        if await staff_thread.handle_staff_reply(self.db, self.service, merchant, event.room_id,
                                                 str(event.sender), event.event_id, raw):
            return  # an order's thread: staff move the order on there
        thread = await support.thread_for_root(self.db, str(relation.get("event_id")))
        if thread is None or thread.merchant_slug != merchant.slug:
            return
        role = await store.staff_role(self.db, merchant.slug, str(event.sender))

        async def tell_staff(text: str) -> None:
            notice = {"msgtype": "m.notice", "body": text,
                      "m.relates_to": {"rel_type": "m.thread", "event_id": relation["event_id"],
                                       "is_falling_back": False,
                                       "m.in_reply_to": {"event_id": event.event_id}}}
            await self._send(merchant, event.room_id, notice,
                             f"mercato.cs.refused.{event.event_id}", messages.SUPPORT_NOTICE)

        if role is None or not role_can(role, Action.ANSWER_BUYERS):
            await tell_staff(f"Not sent: {event.sender} is "
                             f"{'not staff' if role is None else role} and may not answer buyers.")
            return
        if merchant.status != "approved":
            await tell_staff(f"Not sent: the shop is {merchant.status}.")
            return
        if await support.relayed(self.db, event.event_id):
            return
        await self._send(merchant, thread.dm_room_id, relayable_content(raw),
                         f"mercato.cs.out.{event.event_id}", messages.SUPPORT_RELAY,
                         messages.relay_subject(event.event_id, thread.dm_room_id, "out"))
        log.info("support.answered", slug=merchant.slug, buyer=thread.buyer_id,
                 staff=event.sender)
