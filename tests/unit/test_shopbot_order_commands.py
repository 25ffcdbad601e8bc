"""The shop bot's order commands, the pure parts: what buyers and staff type, and the stats."""

from __future__ import annotations

import pytest

from bots.shopbot import order_parsing, order_text
from bots.shopbot.commands import registry
from bots.shopbot.order_parsing import CheckoutChoice, StatusMove
from mercato.commands import ArgumentError, Reply, UsageError


def test_quantities_are_whole_numbers_from_1_to_99() -> None:
    assert order_parsing.parse_quantity("1") == 1
    assert order_parsing.parse_quantity(" 99 ") == 99
    for typed, sentence in (("0", "0 is not a quantity you can order; order from 1 to 99"),
                            ("-2", "-2 is not a quantity you can order"),
                            ("100", "100 is not a quantity you can order"),
                            ("two", "'two' is not a quantity; write a whole number from 1")):
        with pytest.raises(ArgumentError) as refused:
            order_parsing.parse_quantity(typed)
        assert str(refused.value).startswith(sentence), typed


def test_buy_reads_shop_sku_and_an_optional_quantity() -> None:
    invocation = registry.parse("buy green-grocer apples-1kg 3", direct=True)
    assert invocation is not None and invocation.values == {
        "shop": "green-grocer", "sku": "apples-1kg", "quantity": 3}
    invocation = registry.parse("buy green-grocer apples-1kg", direct=True)
    assert invocation is not None and invocation.values["quantity"] is None
    with pytest.raises(UsageError) as refused:
        registry.parse("buy green-grocer apples-1kg 100", direct=True)
    assert "order from 1 to 99 of a product at a time" in refused.value.message


def test_checkout_choices_are_key_value_with_quotes() -> None:
    chosen = order_parsing.parse_checkout(
        'delivery=shipping payment=on-delivery address="12 Rue Haute, 69001 Lyon" '
        "phone=+33612345678 coupon=K7Q2M9PXWA")
    assert chosen == CheckoutChoice(delivery="shipping", payment="on_delivery",
                                    coupon="K7Q2M9PXWA", address="12 Rue Haute, 69001 Lyon",
                                    phone="+33612345678")
    assert chosen.missing == []
    assert chosen.order_body("green-grocer") == {
        "shop": "green-grocer", "from_cart": True, "payment": "on_delivery",
        "coupon": "K7Q2M9PXWA",
        "delivery": {"kind": "shipping", "address": "12 Rue Haute, 69001 Lyon",
                     "phone": "+33612345678"}}
    # Curly quotes, as phones type them; a quoted word on its own; case of the keys.
    curly = order_parsing.parse_checkout("Delivery=PICKUP payment=pickup address=“Gare de Lyon”")
    assert (curly.delivery, curly.address) == ("pickup", "Gare de Lyon")
    assert order_parsing.split_words('"La Poste" 8R123 it\'s') == ["La Poste", "8R123", "it's"]


def test_missing_checkout_choices_are_named() -> None:
    assert order_parsing.parse_checkout("").missing == ["delivery", "payment"]
    assert order_parsing.parse_checkout(None).missing == ["delivery", "payment"]
    assert order_parsing.parse_checkout("delivery=shipping payment=on_delivery").missing == [
        "address"]
    assert order_parsing.parse_checkout("payment=pickup").missing == ["delivery"]


@pytest.mark.parametrize(("typed", "sentence"), [
    ("delivery pickup", "write each choice as key=value, like delivery=pickup; 'delivery' "
                        "has no '='"),
    ("colour=red", "'colour' is not a checkout choice; use delivery=, payment=, coupon=, "
                   "address=, phone="),
    ("delivery=pickup delivery=none", "delivery= is given twice; keep one"),
    ("payment=", "payment= needs a value, like payment=on_delivery"),
    ("delivery=drone", "delivery=drone is not a delivery; use delivery=pickup, "
                       "delivery=shipping, delivery=none"),
    ('address="12 Rue Haute', "a quote opened with \" is not closed"),
])
def test_bad_checkout_choices_say_what_to_type(typed: str, sentence: str) -> None:
    with pytest.raises(ArgumentError) as refused:
        order_parsing.parse_checkout(typed)
    assert str(refused.value).startswith(sentence)


def test_staff_actions_become_status_changes() -> None:
    assert order_parsing.parse_action("confirm") == StatusMove("confirmed")
    assert order_parsing.parse_action("Paid") == StatusMove("paid")
    assert order_parsing.parse_action("decline  Out of stock until May") == StatusMove(
        "declined", reason="Out of stock until May")
    assert order_parsing.parse_action('cancel "The buyer phoned"') == StatusMove(
        "cancelled", reason="The buyer phoned")
    shipped = order_parsing.parse_action('ship "La Poste" 8R0123 https://www.laposte.fr/suivi')
    assert shipped.body() == {"status": "shipped", "carrier": "La Poste", "tracking": "8R0123",
                              "tracking_url": "https://www.laposte.fr/suivi"}
    assert order_parsing.parse_action("ship DHL 0034").body() == {
        "status": "shipped", "carrier": "DHL", "tracking": "0034"}
    assert order_parsing.parse_action("refund") == StatusMove("refunded")
    assert order_parsing.is_action("ship DHL 1") and not order_parsing.is_action("hello")


@pytest.mark.parametrize(("typed", "sentence"), [
    ("decline", "say why, after decline: the buyer reads it"),
    ("cancel  ", "say why, after cancel"),
    ("ship DHL", "ship takes the carrier, the tracking number"),
    ("ship DHL 1 http://x.example/t", "'http://x.example/t' is not a tracking link"),
    ("confirm now", "confirm takes nothing after it; I did not expect 'now'"),
    ("explode", "'explode' is not something to do with an order; use confirm | decline"),
])
def test_bad_staff_actions_say_what_to_type(typed: str, sentence: str) -> None:
    with pytest.raises(ArgumentError) as refused:
        order_parsing.parse_action(typed)
    assert str(refused.value).startswith(sentence)


def test_order_ids_and_the_two_sides_of_order() -> None:
    assert order_parsing.parse_order_id(" #a7k3q9") == "A7K3Q9"
    with pytest.raises(ArgumentError):
        order_parsing.parse_order_id("A7K3")
    buyer = registry.parse("order a7k3q9", direct=True)
    assert buyer is not None and buyer.values == {"order_id": "A7K3Q9", "action": None,
                                                  "shop": None}
    staff = registry.parse("order A7K3Q9 ship DHL 0034 --shop green-grocer", direct=True)
    assert staff is not None and staff.values == {
        "order_id": "A7K3Q9", "action": "ship DHL 0034", "shop": "green-grocer"}


def test_orders_filter_takes_a_status_or_all_and_a_shop_in_any_order() -> None:
    assert order_parsing.parse_orders_filter([]) == order_parsing.OrdersFilter()
    assert order_parsing.parse_orders_filter(["placed"]) == order_parsing.OrdersFilter("placed")
    assert order_parsing.parse_orders_filter(["green-grocer", "ALL"]) == order_parsing.OrdersFilter(
        None, "green-grocer")
    with pytest.raises(ArgumentError):
        order_parsing.parse_orders_filter(["placed", "paid"])
    with pytest.raises(ArgumentError):
        order_parsing.parse_orders_filter(["one-shop", "another-shop"])


def test_checkout_help_writes_a_command_that_fits_the_shop() -> None:
    options = {"shop": "green-grocer", "delivery": ["shipping", "pickup"],
               "payment_methods": [
                   {"method": "on_delivery", "label": "Cash on delivery",
                    "delivery": ["shipping"]},
                   {"method": "pickup", "label": "Pay at pickup", "delivery": ["pickup"]}]}
    cart = {"shop": "green-grocer", "items": [{"sku": "a", "quantity": 1}],
            "currency": "EUR", "subtotal": "4.00"}
    reply = order_text.checkout_help(options, CheckoutChoice(), cart, "@shop_green-grocer:x",
                                     "")
    assert "For example: checkout green-grocer delivery=pickup payment=pickup" in reply.text
    assert "open your chat with the shop (@shop_green-grocer:x) and type checkout" in reply.text
    shipping = order_text.checkout_help(options, CheckoutChoice(delivery="shipping"), cart,
                                        "@s:x", "!")
    assert ('!checkout green-grocer delivery=shipping payment=on_delivery address="'
            in shipping.text)


def test_stats_show_orders_revenue_and_campaigns_when_the_api_gives_them() -> None:
    base = Reply("Stats of green-grocer: 3 followers.", "<p>Stats</p>")
    assert order_text.with_order_stats(base, {"followers": 3}) == base
    stats = {"orders": {"by_status": {"placed": 2, "delivered": 1, "cancelled": 0},
                        "revenue": {"EUR": 12450, "USD": "10.00"}},
             "campaigns": [{"id": 4, "title": "Summer sale", "orders": 2},
                           {"id": 5, "title": "Quiet", "orders": 0}]}
    shown = order_text.with_order_stats(base, stats)
    assert shown.text.splitlines()[1:] == [
        "Orders: 3 (2 placed, 1 delivered).",
        "Revenue (orders not cancelled, declined or refunded): 124.50 EUR, 10.00 USD.",
        "Orders from campaigns: #4 Summer sale — 2."]
    assert shown.html is not None and "<p>Orders: 3 (2 placed, 1 delivered).</p>" in shown.html
