"""Staff move an order on by replying in its thread in the shop's staff room.

Each new order opens a thread there (its root is the order's `staff_event_id`). A staff
member writes `confirm`, `decline <reason>`, `paid`, `ship <carrier> <tracking> [link]`,
`delivered`, `refund` or `cancel <reason>` in it; the order moves through the orders
operations as that person (so the orders permission and the status rules decide), and
the shop answers in the thread with the result or the refusal. Anything else in the
thread is staff talking among themselves and gets no answer. The answer's transaction
ID comes from the staff member's event: handled twice, it is answered once (and the
rules refuse the same move twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appservices.commerce.errors import CommerceError
from appservices.commerce.orders import chat_replies
from appservices.commerce.orders import chat_storage as chat_rows
from appservices.commerce.orders import operations as orders
from appservices.commerce.orders.operations import OrdersMatrix
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal
from mercato.commands import (
    CommandError,
    Context,
    Registry,
    Reply,
    argument,
    https_url,
    parse_command,
    strip_reply_fallback,
)
from mercato.db import Database
from mercato.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class OrderAtHand:
    """The order whose thread the staff member writes in, and how to move it."""

    db: Database
    matrix: OrdersMatrix
    slug: str
    order_id: str


@dataclass
class StaffContext(Context):
    order: OrderAtHand | None = None

    @property
    def at_hand(self) -> OrderAtHand:
        if self.order is None:
            raise RuntimeError("a staff command runs in an order's thread")
        return self.order


registry: Registry[StaffContext] = Registry(prefix="!", bot_name="the shop")


async def _move(ctx: StaffContext, **body: Any) -> Reply:
    at = ctx.at_hand
    try:
        order = await orders.change_status(at.db, at.matrix, Principal(kind="user",
                                           user_id=ctx.sender), at.slug, at.order_id, body)
    except CommerceError as e:
        raise CommandError(f"Not done: {e.message}") from None
    return Reply(f"Done: order {order.id} is {order.status}; the buyer was told.")


@registry.command("confirm", help="confirm the order")
async def confirm(ctx: StaffContext) -> Reply:
    return await _move(ctx, status="confirmed")


@registry.command("decline", help="decline the order; the buyer reads the reason",
                  examples=("decline out of stock until May",))
@argument("reason", rest=True, help="why, for the buyer")
async def decline(ctx: StaffContext, reason: str) -> Reply:
    return await _move(ctx, status="declined", reason=reason)


@registry.command("paid", help="the payment arrived")
async def paid(ctx: StaffContext) -> Reply:
    return await _move(ctx, status="paid")


@registry.command("ship", help="the parcel left, with its carrier and tracking number",
                  examples=("ship DHL 00340434161234567890",))
@argument("carrier", help="who carries it, like DHL")
@argument("tracking", help="the tracking number")
@argument("link", parser=https_url, required=False,
          help="the carrier's tracking page (https)")
async def ship(ctx: StaffContext, carrier: str, tracking: str, link: str | None) -> Reply:
    return await _move(ctx, status="shipped", carrier=carrier, tracking=tracking,
                       tracking_url=link)


@registry.command("delivered", help="the buyer has it (delivered, collected, downloaded)")
async def delivered(ctx: StaffContext) -> Reply:
    return await _move(ctx, status="delivered")


@registry.command("refund", help="the money went back to the buyer")
async def refund(ctx: StaffContext) -> Reply:
    return await _move(ctx, status="refunded")


@registry.command("cancel", help="cancel the order; the buyer reads the reason",
                  examples=("cancel the buyer asked by phone",))
@argument("reason", rest=True, help="why, for the buyer")
async def cancel(ctx: StaffContext, reason: str) -> Reply:
    return await _move(ctx, status="cancelled", reason=reason)


def _thread_root(content: dict[str, Any]) -> str | None:
    relation = content.get("m.relates_to")
    if not isinstance(relation, dict) or relation.get("rel_type") != "m.thread":
        return None
    root = relation.get("event_id")
    return root if isinstance(root, str) else None


async def handle_staff_reply(db: Database, matrix: OrdersMatrix, merchant: store.Merchant,
                             room_id: str, sender: str, event_id: str,
                             content: dict[str, Any]) -> bool:
    """True when the message is in an order's thread (answered if it is a command)."""
    root = _thread_root(content)
    found = await chat_rows.order_of_staff_thread(db, root) if root else None
    if root is None or found is None or found[1] != merchant.slug:
        return False
    body = strip_reply_fallback(str(content.get("body", ""))).strip()
    typed = parse_command(body, registry.prefix, direct=True)
    if typed is None or registry.lookup(typed.name) is None:
        return True  # staff talking about the order among themselves
    ctx = StaffContext(sender=sender, room_id=room_id, event_id=event_id, direct=True,
                       order=OrderAtHand(db, matrix, merchant.slug, found[0]))
    outcome = await registry.dispatch(body, ctx)
    if outcome is None:
        return True
    log.info("order_thread.command", shop=merchant.slug, order=found[0],
             command=outcome.command, ok=outcome.ok)
    reply = chat_replies.content_of(outcome.reply, "m.notice")
    reply["m.relates_to"] = {"rel_type": "m.thread", "event_id": root, "is_falling_back": False,
                             "m.in_reply_to": {"event_id": event_id}}
    await chat_replies.send_content(db, matrix, merchant, room_id, event_id, reply)
    return True
