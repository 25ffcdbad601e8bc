"""The Matrix messages of an order, recorded in the core outbox inside the order's own
transaction, and the outbox hooks that finish them when they are sent.

An order's messages go to two rooms, each in its own order: the buyer's DM with the shop
(the card, then each change's edit of the card and short notice) and the shop's staff
room (the thread's opening, then each change in the thread). An edit and a thread reply
need the event ID of what they refer to, known only once that was sent; since the outbox
sends a room's messages in the order they were recorded, it is known when they are
built (`on_build`), from the order row the `on_sent` hooks filled in.
"""

from __future__ import annotations

from typing import Any

from appservices.commerce.catalog.products import edit_content
from appservices.commerce.orders import cards
from appservices.commerce.orders import storage as rows
from mercato.db import Database
from mercato.logging import get_logger
from mercato.matrix.outbox import Message, Outbox, Outgoing
from mercato.matrix.outbox_hooks import Drop

log = get_logger(__name__)

ORDER_CARD = "order_card"
ORDER_CARD_EDIT = "order_card_edit"
ORDER_NOTICE = "order_notice"
ORDER_STAFF = "order_staff"
ORDER_STAFF_UPDATE = "order_staff_update"


def card(order_id: str, room_id: str, sender: str, content: dict[str, Any],
         held_for: str | None) -> Message:
    return Message(txn_id=f"mercato.order.{order_id}.card", room_id=room_id, sender=sender,
                   content=content, kind=ORDER_CARD, subject=order_id, held_for=held_for)


def card_edit(order_id: str, step: int, room_id: str, sender: str,
              content: dict[str, Any]) -> Message:
    """`content` is the card as it is now; the relation is added when it is sent."""
    return Message(txn_id=f"mercato.order.{order_id}.{step}.edit", room_id=room_id,
                   sender=sender, content=content, kind=ORDER_CARD_EDIT, subject=order_id)


def notice(order_id: str, step: int, room_id: str, sender: str,
           content: dict[str, Any]) -> Message:
    return Message(txn_id=f"mercato.order.{order_id}.{step}.notice", room_id=room_id,
                   sender=sender, content=content, kind=ORDER_NOTICE, subject=order_id)


def staff_opening(order_id: str, room_id: str, sender: str, content: dict[str, Any]) -> Message:
    return Message(txn_id=f"mercato.order.{order_id}.staff", room_id=room_id, sender=sender,
                   content=content, kind=ORDER_STAFF, subject=order_id)


def staff_update(order_id: str, step: int, room_id: str, sender: str,
                 content: dict[str, Any]) -> Message:
    return Message(txn_id=f"mercato.order.{order_id}.{step}.staff", room_id=room_id,
                   sender=sender, content=content, kind=ORDER_STAFF_UPDATE, subject=order_id)


class OrderMessages:
    """The outbox's hooks for an order's kinds of message."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, outbox: Outbox) -> None:
        outbox.on_sent(ORDER_CARD, self.card_sent)
        outbox.on_sent(ORDER_STAFF, self.thread_opened)
        outbox.on_build(ORDER_CARD_EDIT, self.build_edit)
        outbox.on_build(ORDER_STAFF_UPDATE, self.build_thread_reply)

    async def card_sent(self, message: Outgoing, event_id: str) -> None:
        await rows.update_order(self.db, str(message.subject), card_event_id=event_id)

    async def thread_opened(self, message: Outgoing, event_id: str) -> None:
        await rows.update_order(self.db, str(message.subject), staff_event_id=event_id)

    async def build_edit(self, message: Outgoing) -> dict[str, Any] | Drop:
        card_event_id, _ = await rows.event_ids(self.db, str(message.subject))
        if card_event_id is None:  # the card itself was given up: nothing to edit
            return Drop("the order card was never sent")
        return edit_content(message.content, card_event_id)

    async def build_thread_reply(self, message: Outgoing) -> dict[str, Any]:
        _, root = await rows.event_ids(self.db, str(message.subject))
        # Without its opening (given up) the change is still said, outside a thread.
        return cards.in_thread(message.content, root) if root else message.content
