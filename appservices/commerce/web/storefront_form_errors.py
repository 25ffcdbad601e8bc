"""Checkout refusals in a buyer's words, next to the field they concern, sans I/O.

Orders' operations refuse with the API's wording ("delivery.address: is required"), which
names a JSON field a buyer never saw. The checkout form shows each refusal beside its field
instead: a missing address asks for the address, a missing payment asks to choose one, a
payment that does not fit the delivery names the methods that do (by the labels the form
shows), and a coupon's refusal is its own reason. A refusal that is already a sentence
(the stock's "Only 3 of Mug (mug) left; …", a closed shop) is kept as it is, above the form.

Why the payment list is not filtered by the chosen delivery: without JavaScript that needs
a round trip (choose delivery, press "Update", then choose payment), and a method that
appears or vanishes between two screens is harder to follow than one list whose every
method says which delivery it goes with. So the list stays whole, with that hint, and a
mismatch is refused with the fitting methods named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mercato.values import InvalidValue

FIELDS = ("delivery", "address", "phone", "payment", "coupon")


@dataclass(frozen=True)
class FormError:
    field: str  # one of FIELDS, or "" for the whole form
    message: str


def sentence(text: str) -> str:
    """The text with a capital first letter and a full stop (or its own ending)."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else f"{text}."


def _payment_error(chosen: dict[str, str], payments: list[dict[str, Any]],
                   deliveries: dict[str, str]) -> str:
    wanted = chosen.get("payment", "")
    picked = next((m for m in payments if m["method"] == wanted), None)
    if picked is None:
        return "Choose how to pay."
    kind = chosen.get("delivery", "")
    fitting = [m["label"] for m in payments if kind in m["delivery"]]
    how = deliveries.get(kind, kind).lower()
    if not fitting:
        return f"{picked['label']} does not go with {how}; choose another delivery."
    return f"{picked['label']} does not go with {how}; choose {' or '.join(fitting)}."


def _field_of(error: InvalidValue) -> str:
    if error.field == "delivery.address":
        return "address"
    if error.field == "delivery.phone":
        return "phone"
    if error.field.startswith("delivery"):
        return "delivery"
    return error.field if error.field in FIELDS else ""


def form_error(error: Exception, message: str, chosen: dict[str, str],
               payments: list[dict[str, Any]], deliveries: dict[str, str]) -> FormError:
    """Where a refusal of the checkout form goes and what it says. `message` is the
    refusal's API sentence, `chosen` what the buyer sent, `payments` the form's payment
    choices (method, label, delivery kinds) and `deliveries` the delivery kinds' texts."""
    if not isinstance(error, InvalidValue):
        return FormError("", message)  # already a sentence (stock, a closed shop, …)
    field = _field_of(error)
    if field == "address" and "required" in error.reason:
        return FormError(field, "Enter the address to ship to.")
    if field == "address":
        return FormError(field, f"The address {error.reason}.".replace("..", "."))
    if field == "phone":
        return FormError(field, sentence(error.reason))
    if field == "delivery":
        offered = " or ".join(deliveries.values()).lower()
        return FormError(field, sentence(f"choose how to get your order: {offered}"))
    if field == "payment":
        return FormError(field, _payment_error(chosen, payments, deliveries))
    if field == "coupon":
        return FormError(field, sentence(error.reason))
    return FormError("", sentence(error.reason))
