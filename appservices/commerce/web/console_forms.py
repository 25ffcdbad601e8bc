"""What the console's back-office pages (coupons, orders, customers, settings) read from
their forms and how they lay out what they show, sans I/O: an order's next moves from the
orders' one table of transitions, the board's columns, a status change's body, opening
hours and keyword replies as form fields. The operations check everything again; these
only turn form fields into the bodies the API takes, so a refusal is the API's sentence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appservices.commerce.orders.rules import TRANSITIONS, Actor, DeliveryKind, Order, Status
from appservices.commerce.shops.rules import DAYS

BOARD = (Status.PLACED, Status.CONFIRMED, Status.PAID, Status.SHIPPED, Status.DELIVERED)
FOLDED = (Status.CANCELLED, Status.DECLINED, Status.REFUNDED)
MOVE_LABELS = {Status.CONFIRMED: "Confirm", Status.DECLINED: "Decline",
               Status.PAID: "Mark paid", Status.SHIPPED: "Ship", Status.DELIVERED: "Mark delivered",
               Status.CANCELLED: "Cancel", Status.REFUNDED: "Refund"}
DAY_NAMES = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
             "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}


def form_text(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def when(ms: int | None) -> str:
    """A time as the console shows it: "2026-11-25 13:16 UTC" (empty for none)."""
    if not ms:
        return ""
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"


# -- orders ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Move:
    status: str
    label: str
    needs: str  # "" | "tracking" (carrier, number, link) | "reason" (required) | "note"


def next_moves(order: Order) -> list[Move]:
    """The moves staff may offer for this order, in the table's order, leaving out those
    the order cannot make (shipping a pickup, refunding what was never paid)."""
    current = Status(order.status)
    moves = []
    for (before, after), who in TRANSITIONS.items():
        if before != current or Actor.SHOP not in who:
            continue
        shipping = order.delivery_kind == DeliveryKind.SHIPPING
        if after == Status.SHIPPED and not shipping:
            continue
        if after == Status.DELIVERED and shipping and current != Status.SHIPPED:
            continue
        if after == Status.PAID and order.paid_at is not None:
            continue
        if after == Status.REFUNDED and order.paid_at is None:
            continue
        needs = ("tracking" if after == Status.SHIPPED else
                 "reason" if after == Status.DECLINED else
                 "note" if after in (Status.CANCELLED, Status.REFUNDED) else "")
        moves.append(Move(after.value, MOVE_LABELS[after], needs))
    return moves


def status_body(form: Any) -> dict[str, Any]:
    """The body of POST …/orders/{id}/status from the move's form: empty fields left out."""
    body: dict[str, Any] = {"status": form_text(form, "status")}
    for name in ("carrier", "tracking", "tracking_url", "reason"):
        if form_text(form, name):
            body[name] = form_text(form, name)
    return body


# -- opening hours and automatic replies ------------------------------------------------------

def hours_fields(opening_hours: str) -> dict[str, str]:
    """The stored opening hours as the form's fields: the timezone and, per day, its
    spans joined by commas ("09:00-12:00, 14:00-18:00")."""
    hours = json.loads(opening_hours) if opening_hours else {}
    fields = {"timezone": str(hours.get("timezone", "")) if hours else ""}
    for day in DAYS:
        fields[day] = ", ".join(hours.get(day, []))
    return fields


def hours_from_form(form: Any) -> dict[str, Any]:
    """The form's opening hours as PATCH /shops/{slug} takes them; no day at all means no
    opening hours (always open)."""
    days = {day: [s.strip() for s in form_text(form, day).split(",") if s.strip()]
            for day in DAYS if form_text(form, day)}
    if not days:
        return {}
    return {"timezone": form_text(form, "timezone") or "UTC", **days}


def keywords_text(keyword_replies: str) -> str:
    """The keyword replies as the form's text: one "keyword: reply" a line."""
    return "\n".join(f"{item['keyword']}: {item['reply']}"
                     for item in json.loads(keyword_replies or "[]"))


def keywords_from_text(text: str) -> list[dict[str, Any]] | str:
    """The form's lines as keyword replies, or the line that has no "keyword: reply"."""
    replies = []
    for line in text.splitlines():
        if not line.strip():
            continue
        keyword, colon, reply = line.partition(":")
        if not colon:
            return line.strip()
        replies.append({"keyword": keyword.strip(), "reply": reply.strip()})
    return replies
