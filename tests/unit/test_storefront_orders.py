"""The storefront's checkout refusals in a buyer's words, and how an order reads on the
buyer's pages (cancel until it ships, with the rule's sentence after; forget the address
once it is done; the history with who did what), without a server."""

from __future__ import annotations

from dataclasses import replace

from appservices.commerce.errors import Conflict, InvalidInput
from appservices.commerce.orders.rules import HistoryEntry, Item, Order
from appservices.commerce.web.storefront_form_errors import FormError, form_error, sentence
from appservices.commerce.web.storefront_order_rules import (
    can_forget,
    cancel_refusal,
    history_rows,
    orders_link,
)

PAYMENTS = [{"method": "on_delivery", "label": "Pay on delivery", "delivery": ["shipping"]},
            {"method": "pickup", "label": "Pay at pickup", "delivery": ["pickup"]},
            {"method": "bank_transfer", "label": "Bank transfer",
             "delivery": ["shipping", "pickup", "none"]}]
DELIVERIES = {"shipping": "Shipping to your address", "pickup": "Pick up at the shop"}


def _refused(error: Exception, **chosen: str) -> FormError:
    return form_error(error, getattr(error, "message", str(error)), chosen, PAYMENTS,
                      DELIVERIES)


def test_each_refusal_goes_next_to_its_field_in_a_buyers_words() -> None:
    assert _refused(InvalidInput("delivery.address", "is required")) == FormError(
        "address", "Enter the address to ship to.")
    assert _refused(InvalidInput("payment", "this shop takes: on_delivery")) == FormError(
        "payment", "Choose how to pay.")
    assert _refused(InvalidInput("payment", "pay on delivery does not go with pickup"),
                    payment="on_delivery", delivery="pickup") == FormError(
        "payment", "Pay on delivery does not go with pick up at the shop; choose Pay at "
                   "pickup or Bank transfer.")
    assert _refused(InvalidInput("coupon", "NOPE12 is not a code of Tea")) == FormError(
        "coupon", "NOPE12 is not a code of Tea.")
    assert _refused(InvalidInput("delivery.phone", "write a phone number with digits")) == \
        FormError("phone", "Write a phone number with digits.")
    assert _refused(InvalidInput("delivery.kind", "this shop offers: shipping")).field == \
        "delivery"


def test_a_refusal_that_is_already_a_sentence_is_kept_above_the_form() -> None:
    stock = Conflict("Only 3 of Mug (mug) left; ask for 3 or fewer.")
    assert _refused(stock) == FormError("", "Only 3 of Mug (mug) left; ask for 3 or fewer.")
    assert _refused(InvalidInput("items", "your cart at Tea is empty; add products first")) \
        == FormError("", "Your cart at Tea is empty; add products first.")
    assert sentence("done!") == "Done!" and sentence("") == ""


def _order(status: str, **changes: object) -> Order:
    order = Order(
        id="A7K3Q9", merchant_slug="tea", buyer_id="@b:x", status=status, currency="EUR",
        subtotal=1200, discount=0, total=1200, delivery_kind="shipping", address="Street 1",
        phone=None, payment_method="on_delivery", payment_reference="", coupon_code=None,
        paid_at=None, carrier=None, tracking=None, tracking_url=None, reason=None,
        campaign_id=None, dm_room_id="!dm:x", card_event_id=None, staff_event_id=None,
        forgotten_at=None, created_at=0, updated_at=0, items=[Item("mug", "Mug", 1200, 1)],
        history=[HistoryEntry("placed", "@b:x", "", 0),
                 HistoryEntry("shipped", "@staff:x", "DHL 123", 60_000)])
    return replace(order, **changes)


def test_cancel_until_it_ships_then_the_rules_sentence() -> None:
    assert cancel_refusal(_order("placed"), False) is None
    assert cancel_refusal(_order("confirmed"), False) is None
    refusal = cancel_refusal(_order("shipped"), False)
    assert refusal == ("Order A7K3Q9 was already shipped; it can no longer be cancelled. "
                       "Ask the shop about a return.")


def test_the_address_is_forgotten_once_the_order_is_done() -> None:
    assert not can_forget(_order("shipped"))
    assert can_forget(_order("delivered"))
    assert not can_forget(_order("delivered", forgotten_at=5, address=None))


def test_history_says_who_did_what_and_when() -> None:
    rows = history_rows(_order("shipped"), "@b:x", "Tea")
    assert [(r["status"], r["by"], r["at"], r["note"]) for r in rows] == [
        ("Placed — waiting for the shop", "You", "1970-01-01 00:00 UTC", ""),
        ("Shipped", "Tea", "1970-01-01 00:01 UTC", "DHL 123")]
    assert orders_link(None) == "/orders" and orders_link("abc") == "/orders?after=abc"
