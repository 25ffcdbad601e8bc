"""How an order reads on the buyer's web pages, sans I/O: its status in words, its history
with times, whether the buyer may still cancel it (and, if not, the rule's own sentence),
whether its address may be forgotten now, and the `/orders` pages' links. Tested without a
server; the pages are web/storefront_orders.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from appservices.commerce.errors import CommerceError
from appservices.commerce.orders import rules
from appservices.commerce.orders.rules import Actor, Order, Status, StatusChange

ORDERS_PER_PAGE = 20
STATUS_TEXT = {
    Status.PLACED: "Placed — waiting for the shop", Status.CONFIRMED: "Confirmed",
    Status.DECLINED: "Declined by the shop", Status.PAID: "Paid", Status.SHIPPED: "Shipped",
    Status.DELIVERED: "Delivered", Status.CANCELLED: "Cancelled", Status.REFUNDED: "Refunded",
}
# Orders whose address is still needed: forgetting it waits until they are done.
UNDERWAY = frozenset({Status.PLACED, Status.CONFIRMED, Status.PAID, Status.SHIPPED})


def status_text(status: str) -> str:
    return STATUS_TEXT.get(Status(status), status)


def when(at_ms: int) -> str:
    """A time as the page shows it (UTC, to the minute)."""
    return f"{datetime.fromtimestamp(at_ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"


def cancel_refusal(order: Order, paid_before_shipping: bool) -> str | None:
    """None when the buyer may cancel the order now; else the sentence orders' own rule
    refuses the cancellation with (shipped: "… can no longer be cancelled. Ask the shop
    about a return.")."""
    try:
        rules.check_transition(order, StatusChange(Status.CANCELLED), Actor.BUYER,
                               paid_before_shipping=paid_before_shipping)
    except CommerceError as e:
        return e.message
    return None


def can_forget(order: Order) -> bool:
    """The address and phone may be erased once the order is done, and only once."""
    return Status(order.status) not in UNDERWAY and order.forgotten_at is None and bool(
        order.address or order.phone)


def history_rows(order: Order, buyer_id: str, shop_name: str) -> list[dict[str, Any]]:
    """Each step of the order, oldest first: what, who (you or the shop), when, its note."""
    return [{"status": status_text(h.status), "by": "You" if h.actor == buyer_id else shop_name,
             "at": when(h.at), "iso": datetime.fromtimestamp(h.at / 1000, UTC).isoformat(
                 timespec="seconds"), "note": h.note} for h in order.history]


def orders_link(cursor: str | None) -> str:
    return f"/orders?{urlencode({'after': cursor})}" if cursor else "/orders"
