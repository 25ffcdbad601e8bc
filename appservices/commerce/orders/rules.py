"""What an order may be and become, sans I/O: the statuses and the one table of allowed
transitions, the checks of what a buyer sends at checkout, money in cents, discounts.

Every refusal is a sentence the buyer or the shop's staff reads as it is, in the API's
answer and in the shop bot's reply alike.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from appservices.commerce import links
from appservices.commerce.errors import Conflict, Forbidden, InvalidInput
from mercato.values import json_kind, parse_money, plain_text

MAX_QUANTITY = 99
MAX_LINES = 30
MAX_ADDRESS = 500
MAX_REASON = 300
ORDER_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud on the phone
ORDER_ID = re.compile(f"^[{ORDER_ID_ALPHABET}]{{6}}$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{4,24}$")


class Status(StrEnum):
    PLACED = "placed"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class Actor(StrEnum):
    BUYER = "buyer"
    SHOP = "shop"  # staff with the orders permission, the shop's back-end, the operator


class DeliveryKind(StrEnum):
    SHIPPING = "shipping"
    PICKUP = "pickup"
    NONE = "none"  # digital goods


BUYER, SHOP = frozenset({Actor.BUYER}), frozenset({Actor.SHOP})
EITHER = BUYER | SHOP

# The one table: (from, to) → who may make that move. Anything else is refused.
TRANSITIONS: dict[tuple[Status, Status], frozenset[Actor]] = {
    (Status.PLACED, Status.CONFIRMED): SHOP,
    (Status.PLACED, Status.DECLINED): SHOP,
    (Status.PLACED, Status.CANCELLED): EITHER,
    (Status.CONFIRMED, Status.PAID): SHOP,
    (Status.CONFIRMED, Status.SHIPPED): SHOP,  # paid on delivery, or paid already
    (Status.CONFIRMED, Status.DELIVERED): SHOP,  # picked up, or digital
    (Status.CONFIRMED, Status.CANCELLED): EITHER,
    (Status.PAID, Status.SHIPPED): SHOP,
    (Status.PAID, Status.DELIVERED): SHOP,
    (Status.PAID, Status.CANCELLED): EITHER,
    (Status.PAID, Status.REFUNDED): SHOP,
    (Status.SHIPPED, Status.DELIVERED): SHOP,
    (Status.SHIPPED, Status.CANCELLED): SHOP,  # lost in the post
    (Status.SHIPPED, Status.REFUNDED): SHOP,
    (Status.DELIVERED, Status.REFUNDED): SHOP,
    (Status.CANCELLED, Status.REFUNDED): SHOP,
}

# Orders in these statuses hold their stock; leaving for one of the others returns it.
HOLDS_STOCK = frozenset({Status.PLACED, Status.CONFIRMED, Status.PAID, Status.SHIPPED,
                         Status.DELIVERED})
FINAL = frozenset({Status.DECLINED, Status.REFUNDED})

DONE_WORDS = {
    Status.PLACED: "placed", Status.CONFIRMED: "confirmed", Status.DECLINED: "declined",
    Status.PAID: "marked paid", Status.SHIPPED: "shipped", Status.DELIVERED: "delivered",
    Status.CANCELLED: "cancelled", Status.REFUNDED: "refunded",
}

# Carriers' tracking pages a shipped order may link to, besides the shop's verified site.
CARRIER_HOSTS = ("dhl.com", "dhl.de", "ups.com", "fedex.com", "usps.com", "dpd.com",
                 "gls-group.com", "gls-group.eu", "royalmail.com", "parcelforce.com",
                 "postnl.nl", "laposte.fr", "colissimo.fr", "correos.es", "poste.it",
                 "deutschepost.de", "posti.fi", "postnord.se", "canadapost-postescanada.ca",
                 "auspost.com.au", "17track.net")


# -- money ------------------------------------------------------------------------------

def cents(price: str) -> int:
    """A catalog price ("24.90", always two decimals) in cents."""
    return int(Decimal(price) * 100)


def money(amount: int) -> str:
    """Cents as the catalog writes a price: "24.90"."""
    return f"{Decimal(amount) / 100:.2f}"


def discount_for(subtotal: int, percent_off: int | None, amount_off: int | None) -> int:
    """What a coupon takes off the subtotal, never more than the subtotal."""
    off = 0
    if percent_off:
        off = subtotal * percent_off // 100
    elif amount_off:
        off = amount_off
    return max(0, min(off, subtotal))


# -- the order as the rules see it --------------------------------------------------------

@dataclass(frozen=True)
class Item:
    sku: str
    title: str
    unit_price: int  # cents
    quantity: int

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class HistoryEntry:
    status: str
    actor: str
    note: str
    at: int


@dataclass(frozen=True)
class Order:
    id: str
    merchant_slug: str
    buyer_id: str
    status: str
    currency: str
    subtotal: int
    discount: int
    total: int
    delivery_kind: str
    address: str | None
    phone: str | None
    payment_method: str
    payment_reference: str
    coupon_code: str | None
    paid_at: int | None
    carrier: str | None
    tracking: str | None
    tracking_url: str | None
    reason: str | None
    campaign_id: int | None
    dm_room_id: str
    card_event_id: str | None
    staff_event_id: str | None
    forgotten_at: int | None
    created_at: int
    updated_at: int
    items: list[Item] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)


def new_order_id() -> str:
    return "".join(secrets.choice(ORDER_ID_ALPHABET) for _ in range(6))


def linked_products(public_url: str, slug: str, texts: list[str]) -> set[str]:
    """The SKUs of the shop's product pages (`<public_url>/p/<slug>/<sku>`) these texts
    link to, over http or https: posts must link over https even where Mercato's own
    address is configured as http behind a proxy that adds TLS."""
    site = re.sub(r"(?i)^https?://", "", public_url.rstrip("/"))
    page = re.compile(r"(?i:https?://)" + re.escape(site) + r"/p/([a-z0-9-]+)/([A-Za-z0-9._-]+)")
    return {m.group(2) for text in texts for m in page.finditer(text) if m.group(1) == slug}


def clean_order_id(value: Any) -> str:
    """An order ID as typed ("a7k3q9", " A7K3Q9 "), or a refusal."""
    text = value.strip().upper() if isinstance(value, str) else ""
    if not ORDER_ID.match(text):
        raise InvalidInput("order_id", "is six letters and digits, like A7K3Q9")
    return text


# -- what the buyer sends -------------------------------------------------------------------

def validate_quantity(value: Any, field_name: str = "quantity") -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(field_name, f"must be a whole number from 1 to {MAX_QUANTITY}, not "
                                       f"{json_kind(value)}")
    if not 1 <= value <= MAX_QUANTITY:
        raise InvalidInput(field_name, f"is {value}; order from 1 to {MAX_QUANTITY} of a "
                                       "product at a time")
    return value


def validate_items(value: Any) -> list[tuple[str, int]]:
    """[(sku, quantity)] from `[{"sku": …, "quantity": …}]`; the same SKU twice is added up."""
    if not isinstance(value, list) or not value:
        raise InvalidInput("items", 'list what to order, like [{"sku": "mug-1", "quantity": 2}]')
    if len(value) > MAX_LINES:
        raise InvalidInput("items", f"has {len(value)} lines; an order has at most {MAX_LINES}")
    wanted: dict[str, int] = {}
    for index, line in enumerate(value):
        if not isinstance(line, dict):
            raise InvalidInput(f"items[{index}]", 'must be an object like {"sku": "mug-1", '
                                                  '"quantity": 2}')
        sku = line.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            raise InvalidInput(f"items[{index}].sku", "is required")
        quantity = validate_quantity(line.get("quantity", 1), f"items[{index}].quantity")
        wanted[sku.strip()] = wanted.get(sku.strip(), 0) + quantity
    for sku, quantity in wanted.items():
        if quantity > MAX_QUANTITY:
            raise InvalidInput("items", f"ask for {quantity} of {sku}; at most {MAX_QUANTITY}")
    return list(wanted.items())


@dataclass(frozen=True)
class Delivery:
    kind: DeliveryKind
    address: str | None = None
    phone: str | None = None


def validate_phone(value: Any) -> str | None:
    text = plain_text("delivery.phone", value, 30)
    if not text:
        return None
    if not PHONE.match(text):
        raise InvalidInput("delivery.phone", "write a phone number with digits, like "
                                             "+49 30 1234567")
    return text


def validate_delivery(value: Any, offered: list[str]) -> Delivery:
    """Shipping needs an address; pickup and digital goods need none."""
    if not isinstance(value, dict):
        raise InvalidInput("delivery", 'must be an object, like {"kind": "shipping", '
                                       '"address": "…", "phone": "…"}')
    kind = value.get("kind")
    if kind not in offered:
        raise InvalidInput("delivery.kind", f"this shop offers: {', '.join(offered)}")
    phone = validate_phone(value.get("phone"))
    if kind == DeliveryKind.SHIPPING:
        address = plain_text("delivery.address", value.get("address"), MAX_ADDRESS,
                             required=True)
        return Delivery(DeliveryKind.SHIPPING, address, phone)
    if value.get("address"):
        raise InvalidInput("delivery.address", f"is not needed for {kind}; leave it out")
    return Delivery(DeliveryKind(kind), None, phone)


# -- settings ----------------------------------------------------------------------------------

DEFAULT_DELIVERY = [DeliveryKind.SHIPPING.value, DeliveryKind.PICKUP.value]


def validate_delivery_kinds(value: Any) -> list[str]:
    allowed = [k.value for k in DeliveryKind]
    if not isinstance(value, list) or not value or any(k not in allowed for k in value):
        raise InvalidInput("delivery", f"list the delivery kinds you offer, from: "
                                       f"{', '.join(allowed)}")
    return [k for k in allowed if k in value]


# -- status changes ------------------------------------------------------------------------

@dataclass(frozen=True)
class StatusChange:
    status: Status
    carrier: str | None = None
    tracking: str | None = None
    tracking_url: str | None = None
    reason: str | None = None


def parse_status_change(body: Any, link_policy: links.LinkPolicy) -> StatusChange:
    """`{"status": "shipped", "carrier": …, "tracking": …, "tracking_url": …}`, or
    `{"status": "declined", "reason": …}`; a tracking link passes the link rules (the
    shop's verified site, or a carrier's tracking page)."""
    if not isinstance(body, dict):
        raise InvalidInput("body", 'send {"status": …}')
    try:
        status = Status(str(body.get("status")))
    except ValueError:
        raise InvalidInput("status", f"use one of: {', '.join(s.value for s in Status)}") \
            from None
    reason = plain_text("reason", body.get("reason"), MAX_REASON) or None
    if status == Status.DECLINED and not reason:
        raise InvalidInput("reason", "say why the order is declined; the buyer reads it")
    carrier = plain_text("carrier", body.get("carrier"), 60) or None
    tracking = plain_text("tracking", body.get("tracking"), 80) or None
    url = links.clean_https_url("tracking_url", body.get("tracking_url"), 500) or None
    if status != Status.SHIPPED and (carrier or tracking or url):
        raise InvalidInput("carrier", "carrier and tracking go with the status shipped")
    if url:
        policy = links.LinkPolicy(allowed_hosts=link_policy.allowed_hosts + CARRIER_HOSTS,
                                  verified=True)
        links.check_links([url], policy)
    return StatusChange(status, carrier, tracking, url, reason)


def check_transition(order: Order, change: StatusChange, actor: Actor, *,
                     paid_before_shipping: bool) -> None:
    """Refuse a move the table does not allow, or one that makes no sense for this order,
    with the sentence the caller reads."""
    current, new = Status(order.status), change.status
    what = f"Order {order.id}"
    if new == Status.PAID and order.paid_at is not None:
        raise Conflict(f"{what} is already paid.", errcode="MERCATO_ORDER_STATUS")
    if current == new:
        raise Conflict(f"{what} is already {DONE_WORDS[new]}.", errcode="MERCATO_ORDER_STATUS")
    allowed = TRANSITIONS.get((current, new))
    if allowed is None:
        raise Conflict(_impossible(what, current, new), errcode="MERCATO_ORDER_STATUS")
    if actor not in allowed:
        if actor == Actor.BUYER and new == Status.CANCELLED:
            raise Conflict(f"{what} was already {DONE_WORDS[current]}; it can no longer be "
                           "cancelled. Ask the shop about a return.",
                           errcode="MERCATO_ORDER_STATUS")
        raise Forbidden(f"Only the shop can mark an order {new.value}.")
    _check_fits_order(order, change, what, paid_before_shipping)


def _impossible(what: str, current: Status, new: Status) -> str:
    if current in FINAL or current == Status.CANCELLED and new != Status.REFUNDED:
        return f"{what} is {current.value}; a {current.value} order cannot be {DONE_WORDS[new]}."
    return f"{what} is {current.value}; it cannot be {DONE_WORDS[new]} now."


def _check_fits_order(order: Order, change: StatusChange, what: str,
                      paid_before_shipping: bool) -> None:
    new = change.status
    kind = order.delivery_kind
    if new == Status.SHIPPED:
        if kind != DeliveryKind.SHIPPING:
            raise Conflict(f"{what} is for {'pickup' if kind == 'pickup' else 'download'}; "
                           "mark it delivered when the buyer has it.",
                           errcode="MERCATO_ORDER_STATUS")
        if not change.carrier:
            raise InvalidInput("carrier", "say which carrier has the parcel (and the tracking "
                                          "number)")
        if paid_before_shipping and order.paid_at is None:
            raise Conflict(f"{what} is not paid yet; with {order.payment_method.replace('_', ' ')}"
                           " an order ships after payment: mark it paid first.",
                           errcode="MERCATO_ORDER_NOT_PAID")
    if new == Status.DELIVERED and kind == DeliveryKind.SHIPPING and \
            order.status != Status.SHIPPED:
        raise Conflict(f"{what} has not been shipped; mark it shipped first.",
                       errcode="MERCATO_ORDER_STATUS")
    if new == Status.REFUNDED and order.paid_at is None:
        raise Conflict(f"{what} was never paid; there is nothing to refund.",
                       errcode="MERCATO_ORDER_STATUS")


def stock_returns(before: str, after: Status) -> bool:
    """True when this move gives the order's stock back to the shop."""
    return Status(before) in HOLDS_STOCK and after not in HOLDS_STOCK


def history_note(change: StatusChange) -> str:
    if change.status == Status.SHIPPED:
        return " ".join(p for p in (change.carrier, change.tracking) if p)
    return change.reason or ""


def parse_money_off(value: Any) -> int | None:
    """An amount off as the catalog writes prices ("5.00"), in cents."""
    return None if value in (None, "") else cents(parse_money("amount_off", value))
