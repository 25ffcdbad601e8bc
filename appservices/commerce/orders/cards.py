"""The order card and the short notices around it, sans I/O.

The card is an ordinary `m.room.message` (`m.text`) that every client shows in full:
`body` is complete plain text, `formatted_body` stays within the spec's allowlist
(rendered from templates like the product card, then sanitised), and the order's data
travels under `org.mercato.order`. A status change edits the card (`m.replace`, built
with the product card's `edit_content`) and sends a short notice of its own, so the
buyer's client notifies. Staff see each order as a thread in the staff room: the
opening names the buyer and the delivery kind; address and phone stay out of the room
(any staff member reads it) and are read through the API or the shop bot by staff with
the orders permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appservices.commerce.catalog.products import TEMPLATES
from appservices.commerce.orders.payments import REGISTRY, Payable, method
from appservices.commerce.orders.rules import DeliveryKind, Order, Status, money
from mercato.matrix.html import sanitize_html

ORDER_KEY = "org.mercato.order"

STATUS_TEXT = {
    Status.PLACED: "placed, waiting for the shop to confirm",
    Status.CONFIRMED: "confirmed",
    Status.DECLINED: "declined by the shop",
    Status.PAID: "paid",
    Status.SHIPPED: "shipped",
    Status.DELIVERED: "delivered",
    Status.CANCELLED: "cancelled",
    Status.REFUNDED: "refunded",
}
DELIVERY_TEXT = {DeliveryKind.SHIPPING: "shipping to your address",
                 DeliveryKind.PICKUP: "pickup at the shop",
                 DeliveryKind.NONE: "nothing to ship (digital)"}


@dataclass(frozen=True)
class ShopFace:
    """The shop as a card names it."""

    slug: str
    name: str
    mxid: str
    verified: bool


def payable(order: Order, shop: ShopFace) -> Payable:
    return Payable(order.id, shop.slug, shop.name, money(order.total), order.currency,
                   order.delivery_kind)


def instructions(order: Order, shop: ShopFace, settings: dict[str, Any]) -> str:
    """How to pay, as the buyer reads it on the card."""
    return method(order.payment_method, settings).instructions(
        payable(order, shop), order.payment_reference)


def tracking_text(order: Order) -> str:
    return " ".join(part for part in (order.carrier, order.tracking) if part)


def order_data(order: Order, shop: ShopFace) -> dict[str, Any]:
    """The order under `org.mercato.order`: what a client or bot reads without parsing."""
    return {
        "id": order.id, "shop": shop.mxid, "shop_slug": shop.slug, "status": order.status,
        "currency": order.currency,
        "items": [{"sku": i.sku, "title": i.title, "unit_price": money(i.unit_price),
                   "quantity": i.quantity, "total": money(i.line_total)} for i in order.items],
        "subtotal": money(order.subtotal), "discount": money(order.discount),
        "total": money(order.total), "coupon": order.coupon_code,
        "delivery": order.delivery_kind, "payment": {
            "method": order.payment_method, "reference": order.payment_reference or None,
            "paid": order.paid_at is not None},
        "status_history": [{"status": h.status, "at": h.at} for h in order.history],
        "tracking": {"carrier": order.carrier, "number": order.tracking,
                     "url": order.tracking_url} if order.carrier else None,
    }


def render_card(order: Order, shop: ShopFace, payment_settings: dict[str, Any]) -> dict[str, Any]:
    status = Status(order.status)
    values = {
        "o": order, "shop_name": shop.name, "shop_mxid": shop.mxid, "verified": shop.verified,
        "status_text": STATUS_TEXT[status],
        "items": [{"sku": i.sku, "title": i.title, "quantity": i.quantity,
                   "unit_price": money(i.unit_price), "line_total": money(i.line_total)}
                  for i in order.items],
        "subtotal": money(order.subtotal), "discount": money(order.discount),
        "total": money(order.total),
        "delivery_text": DELIVERY_TEXT[DeliveryKind(order.delivery_kind)],
        "tracking_text": tracking_text(order),
        "payment_label": REGISTRY[order.payment_method].label,
        "show_instructions": order.paid_at is None and status in (
            Status.PLACED, Status.CONFIRMED, Status.SHIPPED),
        "instructions": instructions(order, shop, payment_settings),
    }
    return {
        "msgtype": "m.text",
        "body": TEMPLATES.get_template("order.txt.j2").render(values).strip(),
        "format": "org.matrix.custom.html",
        "formatted_body": sanitize_html(
            TEMPLATES.get_template("order.html.j2").render(values).strip()),
        ORDER_KEY: order_data(order, shop),
    }


def status_notice(order: Order, shop: ShopFace) -> dict[str, Any]:
    """The buyer's short notice of a change (m.text: clients notify for it)."""
    status = Status(order.status)
    what = {
        Status.CONFIRMED: "was confirmed",
        Status.DECLINED: f"was declined: {order.reason}",
        Status.PAID: "is paid, thank you",
        Status.SHIPPED: f"was shipped: {tracking_text(order)}" + (
            f" {order.tracking_url}" if order.tracking_url else ""),
        Status.DELIVERED: "was delivered",
        Status.CANCELLED: "was cancelled" + (f": {order.reason}" if order.reason else ""),
        Status.REFUNDED: f"was refunded ({money(order.total)} {order.currency})",
    }.get(status, f"is {status.value}")
    body = f"Your order {order.id} at {shop.name} {what}."
    return {"msgtype": "m.text", "body": body,
            ORDER_KEY: {"id": order.id, "status": order.status}}


def staff_opening(order: Order, shop: ShopFace) -> dict[str, Any]:
    """The staff room's notice of a new order, the root of its thread."""
    lines = ", ".join(f"{i.quantity} × {i.title} ({i.sku})" for i in order.items)
    coupon = f" with code {order.coupon_code}" if order.coupon_code else ""
    body = (f"🧾 New order {order.id} from {order.buyer_id}: {lines}. Total "
            f"{money(order.total)} {order.currency}{coupon}. Delivery: {order.delivery_kind}; "
            f"payment: {REGISTRY[order.payment_method].label.lower()}. Address and phone: "
            f"GET /api/v1/shops/{shop.slug}/orders/{order.id} or the shop bot's "
            f"`order {order.id}` (orders permission). Follow-ups come in this thread.")
    return {"msgtype": "m.text", "body": body,
            ORDER_KEY: {"id": order.id, "status": order.status}}


def staff_update(order: Order, actor: str) -> dict[str, Any]:
    """A change, in the order's staff thread (the relation is added when it is sent)."""
    detail = tracking_text(order) if order.status == Status.SHIPPED else (order.reason or "")
    body = f"Order {order.id} is now {order.status}" + (f": {detail}" if detail else "") + \
        f" (by {actor})."
    return {"msgtype": "m.notice", "body": body,
            ORDER_KEY: {"id": order.id, "status": order.status}}


def in_thread(content: dict[str, Any], root_event_id: str) -> dict[str, Any]:
    return {**content, "m.relates_to": {"rel_type": "m.thread", "event_id": root_event_id,
                                         "is_falling_back": True,
                                         "m.in_reply_to": {"event_id": root_event_id}}}
