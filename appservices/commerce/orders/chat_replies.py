"""The shop's answers in chat about orders (to a buyer's DM, or in an order's staff
thread), recorded in the outbox with a transaction ID derived from the event they
answer: an event handled twice is answered once."""

from __future__ import annotations

from typing import Any

from appservices.commerce.orders.operations import OrdersMatrix
from appservices.commerce.shops import storage as store
from mercato.commands import Reply
from mercato.db import Connection, Database, transaction
from mercato.matrix.html import sanitize_html
from mercato.matrix.outbox import Message

ORDER_CHAT = "order_chat"  # the outbox kind of these answers


def content_of(reply: Reply, msgtype: str = "m.text") -> dict[str, Any]:
    content: dict[str, Any] = {"msgtype": msgtype, "body": reply.text}
    if reply.html:
        content.update(format="org.matrix.custom.html", formatted_body=sanitize_html(reply.html))
    return content


def reply_message(merchant: store.Merchant, room_id: str, cause_event_id: str,
                  content: dict[str, Any], held_for: str | None = None) -> Message:
    return Message(txn_id=f"mercato.orderchat.{cause_event_id}", room_id=room_id,
                   sender=merchant.mxid, content=content, kind=ORDER_CHAT, held_for=held_for)


async def record(conn: Connection, matrix: OrdersMatrix, merchant: store.Merchant, room_id: str,
                 cause_event_id: str, reply: Reply, held_for: str | None = None) -> None:
    """Record the answer inside the caller's transaction (with what it reports)."""
    await matrix.queue_message(reply_message(merchant, room_id, cause_event_id,
                                             content_of(reply), held_for), conn)


async def send(db: Database, matrix: OrdersMatrix, merchant: store.Merchant, room_id: str,
               cause_event_id: str, reply: Reply, held_for: str | None = None) -> None:
    await send_content(db, matrix, merchant, room_id, cause_event_id, content_of(reply),
                       held_for)


async def send_content(db: Database, matrix: OrdersMatrix, merchant: store.Merchant,
                       room_id: str, cause_event_id: str, content: dict[str, Any],
                       held_for: str | None = None) -> None:
    async with transaction(db) as conn:
        await matrix.queue_message(reply_message(merchant, room_id, cause_event_id, content,
                                                 held_for), conn)
    matrix.wake_messages()
