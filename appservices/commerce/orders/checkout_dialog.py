"""The checkout dialog in a buyer's DM with a shop, sans I/O: what to ask next, how an
answer is read, and the summary to confirm.

`checkout` starts a draft; each answer fills one thing in — how the order is delivered
(when the shop offers more than one way), the address and a phone number for shipping,
the payment method (when more than one fits), an optional coupon code — until the
summary, which `confirm` places through the orders operations. A wrong answer is
re-asked with what to type. The draft is a row (`chat_storage.py`), so a restart in the
middle of the dialog keeps it; `checkout_chat.py` does the reading and writing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from html import escape
from typing import Any

from appservices.commerce.errors import InvalidInput
from appservices.commerce.orders import rules
from appservices.commerce.orders.cards import DELIVERY_TEXT
from appservices.commerce.orders.rules import DeliveryKind
from mercato.commands import Reply
from mercato.values import InvalidValue, plain_text

STOP_WORDS = frozenset({"cancel", "stop", "quit", "abort"})
SKIP_WORDS = frozenset({"skip", "no", "none", "-"})
CONFIRM_WORDS = frozenset({"confirm", "yes", "ok", "order"})
MIN_ADDRESS = 8  # fewer characters cannot be a postal address

DELIVERY_CHOICES = {
    DeliveryKind.SHIPPING: "shipping to your address",
    DeliveryKind.PICKUP: "pickup at the shop",
    DeliveryKind.NONE: "nothing to ship (digital goods)",
}
DELIVERY_WORDS = {
    "shipping": DeliveryKind.SHIPPING, "ship": DeliveryKind.SHIPPING,
    "delivery": DeliveryKind.SHIPPING, "address": DeliveryKind.SHIPPING,
    "post": DeliveryKind.SHIPPING, "pickup": DeliveryKind.PICKUP,
    "pick up": DeliveryKind.PICKUP, "collect": DeliveryKind.PICKUP,
    "none": DeliveryKind.NONE, "digital": DeliveryKind.NONE, "download": DeliveryKind.NONE,
}


class Step(StrEnum):
    DELIVERY = "delivery"
    ADDRESS = "address"
    PHONE = "phone"
    PAYMENT = "payment"
    COUPON = "coupon"
    CONFIRM = "confirm"


@dataclass(frozen=True)
class Draft:
    """A checkout in progress. None: not asked yet; "": skipped (phone, coupon)."""

    dm_room_id: str
    merchant_slug: str
    buyer_id: str
    delivery_kind: str | None = None
    address: str | None = None
    phone: str | None = None
    payment_method: str | None = None
    coupon_code: str | None = None
    last_event_id: str | None = None
    placing_at: int | None = None
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    delivery: tuple[str, ...]


@dataclass(frozen=True)
class Options:
    """What the shop offers at checkout (`operations.checkout_options`)."""

    delivery: tuple[str, ...]
    methods: tuple[Method, ...]

    @classmethod
    def of(cls, offered: dict[str, Any]) -> Options:
        return cls(tuple(offered["delivery"]), tuple(
            Method(m["method"], m["label"], tuple(m["delivery"]))
            for m in offered["payment_methods"]))

    def methods_for(self, kind: str | None) -> list[Method]:
        return [m for m in self.methods if kind in m.delivery]


@dataclass(frozen=True)
class Answered:
    """The draft after an answer, or the same draft and why the answer was not taken."""

    draft: Draft
    problem: str | None = None


# -- where the dialog stands ---------------------------------------------------------------

def filled(draft: Draft, options: Options) -> Draft:
    """Fill in what there is no choice about: the one delivery kind, the one method."""
    if draft.delivery_kind is None and len(options.delivery) == 1:
        draft = replace(draft, delivery_kind=options.delivery[0])
    fitting = options.methods_for(draft.delivery_kind)
    if draft.delivery_kind and draft.payment_method is None and len(fitting) == 1:
        draft = replace(draft, payment_method=fitting[0].name)
    return draft


def next_step(draft: Draft) -> Step:
    if draft.delivery_kind is None:
        return Step.DELIVERY
    if draft.delivery_kind == DeliveryKind.SHIPPING:
        if draft.address is None:
            return Step.ADDRESS
        if draft.phone is None:
            return Step.PHONE
    if draft.payment_method is None:
        return Step.PAYMENT
    if draft.coupon_code is None:
        return Step.COUPON
    return Step.CONFIRM


def delivery_of(draft: Draft) -> dict[str, Any]:
    """The draft's delivery as `place_order` takes it."""
    delivery: dict[str, Any] = {"kind": draft.delivery_kind}
    if draft.delivery_kind == DeliveryKind.SHIPPING:
        delivery["address"] = draft.address
    if draft.phone:
        delivery["phone"] = draft.phone
    return delivery


def forget_field(draft: Draft, field: str) -> Draft:
    """Clear what `place_order` refused (its error's field), so that question comes again."""
    if field == "coupon":
        return replace(draft, coupon_code=None)
    if field == "payment":
        return replace(draft, payment_method=None)
    if field == "delivery.phone":
        return replace(draft, phone=None)
    if field == "delivery.address":
        return replace(draft, address=None)
    if field.startswith("delivery"):
        return replace(draft, delivery_kind=None, address=None, phone=None,
                       payment_method=None)
    return draft


# -- questions -----------------------------------------------------------------------------

def _numbered(lines: list[str]) -> tuple[str, str]:
    text = "\n".join(f"{n}. {line}" for n, line in enumerate(lines, 1))
    html = "<ol>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ol>"
    return text, html


def question(draft: Draft, options: Options, problem: str | None = None) -> Reply:
    """What to ask now; with `problem`, why the last answer was not taken first."""
    step = next_step(draft)
    lead = f"{problem}\n" if problem else ""
    lead_html = f"<p>⚠️ {escape(problem)}</p>" if problem else ""
    stop = "Type cancel to stop."
    if step == Step.DELIVERY:
        kinds = [k for k in DeliveryKind if k.value in options.delivery]
        text, html = _numbered([DELIVERY_CHOICES[k] for k in kinds])
        words = ", ".join(k.value for k in kinds)
        ask = "How should your order reach you?"
        tail = f"Answer with the number or the word ({words}). {stop}"
        return Reply(f"{lead}{ask}\n{text}\n{tail}",
                     f"{lead_html}<p>{ask}</p>{html}<p>{escape(tail)}</p>")
    if step == Step.ADDRESS:
        ask = ("Where should it be shipped? Send the whole postal address in one message; "
               "several lines are fine (name, street and number, postcode and town, country).")
        return Reply(f"{lead}{ask} {stop}", f"{lead_html}<p>{escape(ask)} {stop}</p>")
    if step == Step.PHONE:
        ask = "A phone number for the courier, like +49 30 1234567? Or type skip."
        return Reply(f"{lead}{ask} {stop}", f"{lead_html}<p>{escape(ask)} {stop}</p>")
    if step == Step.PAYMENT:
        methods = options.methods_for(draft.delivery_kind)
        text, html = _numbered([m.label for m in methods])
        tail = f"Answer with the number or the name. {stop}"
        return Reply(f"{lead}How will you pay?\n{text}\n{tail}",
                     f"{lead_html}<p>How will you pay?</p>{html}<p>{escape(tail)}</p>")
    if step == Step.COUPON:
        ask = "Do you have a coupon code of this shop? Type the code, or skip."
        return Reply(f"{lead}{ask} {stop}", f"{lead_html}<p>{escape(ask)} {stop}</p>")
    tail = "Type confirm to place the order, or cancel to drop it."
    return Reply(f"{lead}{tail}", f"{lead_html}<p>{tail}</p>")


def summary(draft: Draft, options: Options, quote: dict[str, Any]) -> Reply:
    """The order as it will be placed: items, delivery, payment, discount and total."""
    currency = quote["currency"]
    items = [f"{i['quantity']} × {i['title']} ({i['sku']}) — {i['total']} {currency}"
             for i in quote["items"]]
    kind = DeliveryKind(str(draft.delivery_kind))
    delivery = DELIVERY_TEXT[kind] + (f":\n{draft.address}" if kind == DeliveryKind.SHIPPING
                                      else "")
    if draft.phone:
        delivery += f"\nPhone: {draft.phone}"
    method = next((m.label for m in options.methods if m.name == draft.payment_method),
                  str(draft.payment_method))
    money = [f"Subtotal: {quote['subtotal']} {currency}"]
    if quote.get("coupon"):
        money.append(f"Discount ({quote['coupon']}): −{quote['discount']} {currency}")
    total = f"Total: {quote['total']} {currency}"
    tail = "Type confirm to place the order, or cancel to drop it."
    text = "\n".join(["Your order:", *items, *money, total, f"Delivery: {delivery}",
                      f"Payment: {method}", "", tail])
    html = ("<p><strong>Your order</strong></p><ul>"
            + "".join(f"<li>{escape(line)}</li>" for line in items) + "</ul><p>"
            + "<br>".join(escape(line) for line in money)
            + f"<br><strong>{escape(total)}</strong></p>"
            + f"<p>Delivery: {escape(delivery).replace(chr(10), '<br>')}<br>"
            + f"Payment: {escape(method)}</p><p>{tail}</p>")
    return Reply(text, html)


# -- answers -------------------------------------------------------------------------------

def _choice(text: str, names: list[str], words: dict[str, str]) -> str | None:
    """A numbered choice answered by its number or one of its words."""
    said = " ".join(text.lower().replace("_", " ").split()).rstrip(".")
    if said.isdigit():
        index = int(said) - 1
        return names[index] if 0 <= index < len(names) else None
    chosen = words.get(said)
    return chosen if chosen in names else None


def answer(draft: Draft, options: Options, text: str) -> Answered:
    """Apply the buyer's answer to the question the draft is at (not `cancel`, not
    `confirm`: the caller handles those)."""
    step = next_step(draft)
    if step == Step.DELIVERY:
        kinds: list[str] = [k.value for k in DeliveryKind if k.value in options.delivery]
        chosen = _choice(text, kinds, {w: k.value for w, k in DELIVERY_WORDS.items()})
        if chosen is None:
            return Answered(draft, "I did not get that choice.")
        return Answered(filled(replace(draft, delivery_kind=chosen, payment_method=None),
                               options))
    if step == Step.ADDRESS:
        try:
            address = plain_text("address", text, rules.MAX_ADDRESS, required=True)
        except InvalidValue as e:
            return Answered(draft, f"That address {e.reason}.")
        if len(address) < MIN_ADDRESS:
            return Answered(draft, "That is too short for a postal address.")
        return Answered(replace(draft, address=address))
    if step == Step.PHONE:
        if text.strip().lower() in SKIP_WORDS:
            return Answered(replace(draft, phone=""))
        try:
            phone = rules.validate_phone(text)
        except InvalidInput as e:
            return Answered(draft, f"That is not a phone number: {e.reason}.")
        return Answered(replace(draft, phone=phone or ""))
    if step == Step.PAYMENT:
        methods = options.methods_for(draft.delivery_kind)
        words = {m.name.replace("_", " "): m.name for m in methods}
        words.update({m.label.lower(): m.name for m in methods})
        chosen = _choice(text, [m.name for m in methods], words)
        if chosen is None:
            return Answered(draft, "I did not get that payment method.")
        return Answered(replace(draft, payment_method=chosen))
    if step == Step.COUPON:
        said = text.strip()
        if said.lower() in SKIP_WORDS:
            return Answered(replace(draft, coupon_code=""))
        if len(said.split()) != 1 or len(said) > 40:
            return Answered(draft, "A coupon code is one word, like SPRING-7KQ2.")
        return Answered(replace(draft, coupon_code=said.upper()))
    return Answered(draft, "")  # at the summary only confirm or cancel moves on


def is_stop(text: str) -> bool:
    return text.strip().lower().rstrip(".!") in STOP_WORDS


def is_confirm(text: str) -> bool:
    return text.strip().lower().rstrip(".!") in CONFIRM_WORDS
