"""Order rules, payment methods and the order card, without I/O."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from appservices.commerce import links
from appservices.commerce.campaigns.rules import coupon_discount
from appservices.commerce.errors import CommerceError
from appservices.commerce.orders import cards, payments, rules
from appservices.commerce.orders.rules import Actor, Order, Status, StatusChange
from mercato.matrix.html import MATRIX_TAGS
from mercato.values import InvalidValue

POLICY = links.LinkPolicy(allowed_hosts=("shop.example",), verified=True)
SHOP = cards.ShopFace("demo", "Demo <Shop>", "@shop_demo:localhost", True)


def order(status: str = "placed", **changes: object) -> Order:
    base = dict(
        id="A7K3Q9", merchant_slug="demo", buyer_id="@ann:localhost", status=status,
        currency="EUR", subtotal=4990, discount=499, total=4491, delivery_kind="shipping",
        address="1 <Road>", phone="+49 30 1234", payment_method="bank_transfer",
        payment_reference="DEMO-A7K3Q9", coupon_code="SAVE10CODE", paid_at=None, carrier=None,
        tracking=None, tracking_url=None, reason=None, campaign_id=None, dm_room_id="!dm:x",
        card_event_id=None, staff_event_id=None, forgotten_at=None, created_at=1, updated_at=1,
        items=[rules.Item("mug", "Mug & saucer", 2495, 2)],
        history=[rules.HistoryEntry("placed", "@ann:localhost", "", 1)])
    base.update(changes)
    return Order(**base)  # type: ignore[arg-type]


def refusal(current: Order, change: StatusChange, actor: Actor = Actor.SHOP,
            paid_first: bool = True) -> str:
    with pytest.raises(CommerceError) as refused:
        rules.check_transition(current, change, actor, paid_before_shipping=paid_first)
    return refused.value.message


def test_every_transition_in_the_table_names_only_known_statuses_and_actors() -> None:
    for (before, after), who in rules.TRANSITIONS.items():
        assert before != after and who and who <= {Actor.BUYER, Actor.SHOP}
    # Final statuses lead nowhere.
    assert not [key for key in rules.TRANSITIONS if key[0] in rules.FINAL]


def test_nonsense_moves_are_refused_with_a_sentence() -> None:
    shipped = StatusChange(Status.SHIPPED, carrier="DHL")
    assert refusal(order("cancelled"), shipped) == \
        "Order A7K3Q9 is cancelled; a cancelled order cannot be shipped."
    assert refusal(order("paid", paid_at=5), StatusChange(Status.PAID)) == \
        "Order A7K3Q9 is already paid."
    assert refusal(order("confirmed"), shipped) == (
        "Order A7K3Q9 is not paid yet; with bank transfer an order ships after payment: mark "
        "it paid first.")
    assert refusal(order("shipped", paid_at=5), StatusChange(Status.CANCELLED), Actor.BUYER) == (
        "Order A7K3Q9 was already shipped; it can no longer be cancelled. Ask the shop about a "
        "return.")
    assert refusal(order("placed"), StatusChange(Status.CONFIRMED), Actor.BUYER) == \
        "Only the shop can mark an order confirmed."
    assert refusal(order("delivered"), StatusChange(Status.REFUNDED)) == \
        "Order A7K3Q9 was never paid; there is nothing to refund."
    assert refusal(order("confirmed", delivery_kind="pickup"), shipped, paid_first=False) == (
        "Order A7K3Q9 is for pickup; mark it delivered when the buyer has it.")
    assert refusal(order("declined"), StatusChange(Status.CONFIRMED)) == \
        "Order A7K3Q9 is declined; a declined order cannot be confirmed."


def test_allowed_moves_pass_and_stock_comes_back_only_when_leaving_a_holding_status() -> None:
    rules.check_transition(order("confirmed"), StatusChange(Status.SHIPPED, carrier="DHL"),
                           Actor.SHOP, paid_before_shipping=False)
    rules.check_transition(order("placed"), StatusChange(Status.CANCELLED), Actor.BUYER,
                           paid_before_shipping=True)
    assert rules.stock_returns("paid", Status.CANCELLED)
    assert rules.stock_returns("placed", Status.DECLINED)
    assert not rules.stock_returns("cancelled", Status.REFUNDED)
    assert not rules.stock_returns("shipped", Status.DELIVERED)


def test_status_changes_are_checked_and_tracking_links_follow_the_link_rules() -> None:
    change = rules.parse_status_change(
        {"status": "shipped", "carrier": "DHL", "tracking": "0034",
         "tracking_url": "https://www.dhl.com/track?id=0034"}, POLICY)
    assert (change.carrier, change.tracking_url) == ("DHL", "https://www.dhl.com/track?id=0034")
    with pytest.raises(links.LinkRefused):
        rules.parse_status_change({"status": "shipped", "carrier": "X",
                                   "tracking_url": "https://evil.example/t"}, POLICY)
    with pytest.raises(InvalidValue, match="tracking_url: must be an absolute https://"):
        rules.parse_status_change({"status": "shipped", "carrier": "X",
                                   "tracking_url": "http://www.dhl.com/t"}, POLICY)
    with pytest.raises(InvalidValue, match="reason: say why"):
        rules.parse_status_change({"status": "declined"}, POLICY)
    with pytest.raises(InvalidValue, match="status: use one of: placed, confirmed"):
        rules.parse_status_change({"status": "teleported"}, POLICY)


def test_items_quantities_delivery_and_money() -> None:
    assert rules.validate_items([{"sku": "a", "quantity": 2}, {"sku": "a"}]) == [("a", 3)]
    for bad, words in ((0, "is 0"), (100, "is 100"), ("2", "not text"), (True, "not true")):
        with pytest.raises(InvalidValue, match=words):
            rules.validate_items([{"sku": "a", "quantity": bad}])
    with pytest.raises(InvalidValue, match="at most 99"):
        rules.validate_items([{"sku": "a", "quantity": 60}, {"sku": "a", "quantity": 60}])
    assert rules.validate_delivery({"kind": "pickup"}, ["pickup"]).address is None
    with pytest.raises(InvalidValue, match="delivery.address: is required"):
        rules.validate_delivery({"kind": "shipping"}, ["shipping"])
    with pytest.raises(InvalidValue, match="delivery.phone"):
        rules.validate_delivery({"kind": "pickup", "phone": "call me"}, ["pickup"])
    assert (rules.cents("24.90"), rules.money(2490), rules.money(5)) == (2490, "24.90", "0.05")
    assert rules.discount_for(4990, 10, None) == 499
    assert rules.discount_for(1000, None, 2500) == 1000  # never below zero
    assert rules.clean_order_id(" a7k3q9 ") == "A7K3Q9"
    with pytest.raises(InvalidValue):
        rules.clean_order_id("A7K3Q0")  # 0 is never in an order ID


def test_payment_methods_give_instructions_and_check_their_settings() -> None:
    payable = payments.Payable("A7K3Q9", "demo", "Demo", "44.91", "EUR", "shipping")
    bank = payments.method("bank_transfer", {"details": "IBAN DE89 3704"})
    assert bank.reference(payable) == "DEMO-A7K3Q9" and bank.paid_before_shipping
    assert bank.instructions(payable, "DEMO-A7K3Q9") == (
        "Transfer 44.91 EUR to IBAN DE89 3704 with the reference DEMO-A7K3Q9. The order ships "
        "once the payment arrives.")
    offered = payments.check_methods(
        {"payment_link": {"template": "https://shop.example/pay?o={order_id}&t={total}"},
         "on_delivery": {}}, POLICY)
    link = payments.method("payment_link", offered["payment_link"])
    assert link.instructions(payable, "") == \
        "Pay 44.91 EUR online: https://shop.example/pay?o=A7K3Q9&t=44.91"
    with pytest.raises(InvalidValue, match="with {order_id} in it"):
        payments.check_methods({"payment_link": {"template": "https://shop.example/pay"}},
                               POLICY)
    with pytest.raises(links.LinkRefused):
        payments.check_methods({"payment_link": {"template": "https://evil.example/{order_id}"}},
                               POLICY)
    with pytest.raises(InvalidValue, match="'paypal' is not a payment method"):
        payments.check_methods({"paypal": {}}, POLICY)
    with pytest.raises(InvalidValue, match="pay on delivery does not go with pickup"):
        payments.choose("on_delivery", {"on_delivery": {}, "pickup": {}}, "pickup")


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)


def test_the_card_says_everything_in_text_and_allowed_html_with_the_data() -> None:
    content = cards.render_card(order(), SHOP, {"details": "IBAN DE89 3704"})
    body = content["body"]
    for text in ("🧾 Order A7K3Q9 at Demo <Shop> — placed, waiting for the shop to confirm",
                 "2 × Mug & saucer (mug) — 24.95 EUR = 49.90 EUR", "Subtotal: 49.90 EUR",
                 "Discount (SAVE10CODE): −4.99 EUR", "Total: 44.91 EUR",
                 "Address: 1 <Road>", "with the reference DEMO-A7K3Q9"):
        assert text in body, text
    html = content["formatted_body"]
    assert "Demo &lt;Shop&gt;" in html and "1 &lt;Road&gt;" in html and "<Road>" not in html
    tags = Tags()
    tags.feed(html)
    assert tags.tags <= MATRIX_TAGS and "table" not in tags.tags
    data = content[cards.ORDER_KEY]
    assert (data["id"], data["total"], data["discount"], data["status"]) == (
        "A7K3Q9", "44.91", "4.99", "placed")
    assert data["status_history"] == [{"status": "placed", "at": 1}]
    shipped = order("shipped", paid_at=2, carrier="DHL", tracking="0034",
                    tracking_url="https://www.dhl.com/t?id=0034")
    content = cards.render_card(shipped, SHOP, {"details": "IBAN"})
    assert "Tracking: DHL 0034" in content["body"] and "Transfer" not in content["body"]
    assert '<a href="https://www.dhl.com/t?id=0034"' in content["formatted_body"]
    assert cards.status_notice(shipped, SHOP)["body"] == (
        "Your order A7K3Q9 at Demo <Shop> was shipped: DHL 0034 https://www.dhl.com/t?id=0034.")


def test_the_staff_opening_never_carries_the_address_or_phone() -> None:
    opening = cards.staff_opening(order(), SHOP)["body"]
    assert "@ann:localhost" in opening and "Road" not in opening and "1234" not in opening


def test_a_coupon_drop_says_what_its_codes_take_off_at_checkout() -> None:
    assert coupon_discount({"stock": 5}) == (None, None)
    assert coupon_discount({"percent_off": 15}) == (15, None)
    assert coupon_discount({"amount_off": "5"}) == (None, "5.00")
    for bad, words in (({"percent_off": 0}, "from 1 to 100"),
                       ({"percent_off": 10, "amount_off": "1.00"}, "not both"),
                       ({"amount_off": 5}, "not a number")):
        with pytest.raises(InvalidValue, match=words):
            coupon_discount(bad)


def test_a_campaign_linking_a_product_page_over_either_scheme_is_counted() -> None:
    texts = ["Lamps: https://shop.example:8008/p/demo/lamp and http://shop.example:8008/p/"
             "demo/mug-1", "https://shop.example:8008/p/other/tee", "https://evil.example/p/"
             "demo/pen"]
    assert rules.linked_products("http://shop.example:8008/", "demo", texts) == {"lamp",
                                                                                "mug-1"}
    assert rules.linked_products("https://shop.example:8008", "other", texts) == {"tee"}
