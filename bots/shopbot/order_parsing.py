"""What buyers and staff type about carts and orders, read without I/O.

The API applies the full rules (stock, coupons, which move an order may make); these
parsers catch typing mistakes early — a quantity out of range, a checkout choice written
without `=`, a shipment without its carrier — with a sentence saying what to type.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NewType

from mercato.commands import ArgumentError, quoted, shorten

OrderID = NewType("OrderID", str)

MAX_QUANTITY = 99
ORDER_ID_SHAPE = re.compile(r"^[A-Z0-9]{6}$")
QUOTES = {'"': '"', "“": "”", "„": "“", "'": "'"}
DELIVERY_KINDS = ("pickup", "shipping", "none")
CHECKOUT_KEYS = ("delivery", "payment", "coupon", "address", "phone")
STATUSES = ("placed", "confirmed", "declined", "paid", "shipped", "delivered", "cancelled",
            "refunded")


PAGE_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,120}$")


def parse_order_id(value: str) -> OrderID:
    """An order ID as typed: `a7k3q9`, `#A7K3Q9`."""
    text = value.strip().lstrip("#").upper()
    if not ORDER_ID_SHAPE.match(text):
        raise ArgumentError(f"{quoted(value)} is not an order ID; it is six letters and digits, "
                            "like A7K3Q9 (orders lists yours)")
    return OrderID(text)


def parse_page_cursor(value: str) -> str:
    """The mark an orders list gives for its older ones (`--before <mark>`), as it is."""
    text = value.strip()
    if not PAGE_CURSOR.match(text):
        raise ArgumentError(f"{quoted(value)} is not a mark an orders list gave; copy the whole "
                            "--before … from the list's last line")
    return text


def parse_quantity(value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ArgumentError(f"{quoted(value)} is not a quantity; write a whole number from 1 to "
                            f"{MAX_QUANTITY}") from None
    if not 1 <= number <= MAX_QUANTITY:
        raise ArgumentError(f"{number} is not a quantity you can order; order from 1 to "
                            f"{MAX_QUANTITY} of a product at a time")
    return number


def split_words(text: str) -> list[str]:
    """Words split on spaces; quotes keep words together, also after `key=`
    (`address="12 Rue Haute"`), and are taken off."""
    words: list[str] = []
    current: list[str] = []
    started = False
    i = 0
    while i < len(text):
        char = text[i]
        closing = QUOTES.get(char)
        if char.isspace():
            if started:
                words.append("".join(current))
            current, started = [], False
        elif closing is not None and (not started or current[-1:] == ["="]):
            end = text.find(closing, i + 1)
            if end < 0:
                raise ArgumentError(f"a quote opened with {char} is not closed; add {closing} "
                                    "after the quoted words")
            current.append(text[i + 1:end])
            started = True
            i = end
        else:
            current.append(char)
            started = True
        i += 1
    if started:
        words.append("".join(current))
    return words


@dataclass(frozen=True)
class CheckoutChoice:
    """What the buyer chose at checkout; missing choices are None."""

    delivery: str | None = None
    payment: str | None = None
    coupon: str | None = None
    address: str | None = None
    phone: str | None = None

    @property
    def missing(self) -> list[str]:
        needed = [key for key in ("delivery", "payment") if not getattr(self, key)]
        if self.delivery == "shipping" and not self.address:
            needed.append("address")
        return needed

    def order_body(self, shop: str) -> dict[str, Any]:
        """The body of POST /me/orders, ordering what is in the cart."""
        delivery: dict[str, Any] = {"kind": self.delivery}
        if self.address:
            delivery["address"] = self.address
        if self.phone:
            delivery["phone"] = self.phone
        body: dict[str, Any] = {"shop": shop, "from_cart": True, "delivery": delivery,
                                "payment": self.payment}
        if self.coupon:
            body["coupon"] = self.coupon
        return body


def parse_checkout(text: str | None) -> CheckoutChoice:
    """`delivery=shipping payment=on_delivery address="12 Rue Haute, Lyon" phone=+33…`"""
    chosen: dict[str, str] = {}
    for word in split_words(text or ""):
        key, equals, value = word.removeprefix("--").partition("=")
        key = key.strip().lower()
        if not equals:
            raise ArgumentError(f"write each choice as key=value, like delivery=pickup; "
                                f"{quoted(word)} has no '='")
        if key not in CHECKOUT_KEYS:
            raise ArgumentError(f"{quoted(key)} is not a checkout choice; use "
                                + ", ".join(f"{k}=" for k in CHECKOUT_KEYS))
        if key in chosen:
            raise ArgumentError(f"{key}= is given twice; keep one")
        value = value.strip()
        if not value:
            raise ArgumentError(f"{key}= needs a value, like {_EXAMPLE_VALUES[key]}")
        chosen[key] = value
    delivery = chosen.get("delivery")
    if delivery is not None:
        delivery = delivery.lower()
        if delivery not in DELIVERY_KINDS:
            raise ArgumentError(f"delivery={shorten(chosen['delivery'])} is not a delivery; use "
                                + ", ".join(f"delivery={k}" for k in DELIVERY_KINDS))
    payment = chosen.get("payment", "").lower().replace("-", "_") or None
    return CheckoutChoice(delivery=delivery, payment=payment, coupon=chosen.get("coupon"),
                          address=chosen.get("address"), phone=chosen.get("phone"))


_EXAMPLE_VALUES = {"delivery": "delivery=pickup", "payment": "payment=on_delivery",
                   "coupon": "coupon=K7Q2M9PXWA", "address": 'address="12 Rue Haute, Lyon"',
                   "phone": "phone=+33612345678"}


@dataclass(frozen=True)
class StatusMove:
    """A staff member's move of an order, as the status API takes it."""

    status: str
    carrier: str | None = None
    tracking: str | None = None
    tracking_url: str | None = None
    reason: str | None = None

    def body(self) -> dict[str, Any]:
        fields = {"carrier": self.carrier, "tracking": self.tracking,
                  "tracking_url": self.tracking_url, "reason": self.reason}
        return {"status": self.status, **{k: v for k, v in fields.items() if v}}


ACTION_WORDS = {
    "confirm": "confirmed", "confirmed": "confirmed", "accept": "confirmed",
    "decline": "declined", "declined": "declined", "reject": "declined",
    "paid": "paid", "pay": "paid",
    "ship": "shipped", "shipped": "shipped",
    "delivered": "delivered", "deliver": "delivered",
    "refund": "refunded", "refunded": "refunded",
    "cancel": "cancelled", "cancelled": "cancelled",
}
ACTIONS_USAGE = ("confirm | decline <reason> | paid | ship <carrier> <tracking> [link] | "
                 "delivered | refund | cancel <reason>")


def is_action(text: str | None) -> bool:
    """True when what follows the order ID starts with a staff action word."""
    words = (text or "").split(None, 1)
    return bool(words) and words[0].lower() in ACTION_WORDS


def parse_action(text: str) -> StatusMove:
    """`confirm`, `decline Out of stock`, `ship DHL 0034043416 https://…`, …"""
    first, _, rest = text.strip().partition(" ")
    status = ACTION_WORDS.get(first.lower())
    if status is None:
        raise ArgumentError(f"{quoted(first)} is not something to do with an order; use "
                            f"{ACTIONS_USAGE}")
    rest = rest.strip()
    if status in ("declined", "cancelled"):
        reason = _unquoted(rest)
        if not reason:
            raise ArgumentError(f"say why, after {first.lower()}: the buyer reads it, like "
                                f"order A7K3Q9 {first.lower()} Out of stock until May")
        return StatusMove(status, reason=reason)
    if status == "shipped":
        words = split_words(rest)
        if len(words) < 2 or len(words) > 3:
            raise ArgumentError("ship takes the carrier, the tracking number and, if you "
                                "have it, the tracking link: ship DHL 00340434161234567890 "
                                "https://www.dhl.com/…  (quote a carrier of two words: "
                                '"La Poste")')
        link = words[2] if len(words) == 3 else None
        if link is not None and not link.lower().startswith("https://"):
            raise ArgumentError(f"{quoted(link)} is not a tracking link; it starts with https://")
        return StatusMove(status, carrier=words[0], tracking=words[1], tracking_url=link)
    if rest:
        raise ArgumentError(f"{first.lower()} takes nothing after it; I did not expect "
                            f"{quoted(rest)}")
    return StatusMove(status)


def _unquoted(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and QUOTES.get(text[0]) == text[-1]:
        return text[1:-1].strip()
    return text


@dataclass(frozen=True)
class OrdersFilter:
    """`orders [all|<status>] [shop]`: which of a shop's orders a staff member lists."""

    status: str | None = None
    shop: str | None = None


def parse_orders_filter(words: Sequence[str]) -> OrdersFilter:
    status: str | None = None
    shop: str | None = None
    for word in words:
        lowered = word.lower()
        if lowered == "all" or lowered in STATUSES:
            if status is not None:
                raise ArgumentError("name one status (or all), like orders placed")
            status = lowered
        elif shop is None:
            shop = lowered
        else:
            raise ArgumentError(f"I did not expect {quoted(word)}; type orders [all|<status>] "
                                f"[shop], with a status from: {', '.join(STATUSES)}")
    return OrdersFilter(None if status == "all" else status, shop)
