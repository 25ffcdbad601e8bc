"""Orders end to end against a real Synapse: a buyer orders through the API, their client
receives the order card from the shop in their DM, each status change edits it and sends
a notice, the staff room follows the order in a thread; bad input changes nothing; the
address and phone never leave the buyer's DM and the commerce database."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import aiohttp

from mercato.matrix.html import MATRIX_ATTRIBUTES, MATRIX_TAGS
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.commerce_api import (
    CommerceApi,
    accept_invite,
    commerce_rows,
    from_sender,
    is_threaded_in,
    new_user,
    open_shop,
)

# Sentinels: the buyer's address and phone, which only the buyer's DM and the commerce
# database may hold.
ADDRESS = "Sentinelweg 4711, 10115 Berlin"
PHONE = "+49 30 5550199887"
PERSONAL = ("Sentinelweg", "5550199887")


class Allowlist(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in MATRIX_TAGS:
            self.problems.append(tag)
        self.problems += [f"{tag}.{name}" for name, _ in attrs
                          if name not in MATRIX_ATTRIBUTES.get(tag, set()) and name != "rel"]


async def _staffed_shop(api: CommerceApi, owner: MatrixClient) -> tuple[str, str, str]:
    """An approved shop with a lamp (three in stock) and bank transfer offered:
    (slug, shop user, staff room the owner sits in)."""
    slug = await open_shop(api, owner.user_id, "orders")
    staff = api.acting_as(owner.user_id)
    made = await api.post(f"/shops/{slug}/products", staff, {
        "sku": "lamp", "title": "Desk lamp", "price": "30.00", "currency": "EUR",
        "quantity": 3})
    assert made.status == 201 and made.body["quantity"] == 3, made
    settings = await api.call("PUT", f"/shops/{slug}/orders/settings", staff, json={
        "payment_methods": {"bank_transfer": {"details": "IBAN DE89 3704 0044 0532 0130 00"},
                            "on_delivery": {}},
        "delivery": ["shipping", "pickup"]})
    assert settings.status == 200, settings
    staff_room = (await api.shop(slug))["staff_room_id"]
    await accept_invite(owner, staff_room)
    return slug, f"@shop_{slug}:localhost", staff_room


def _order_card(order_id: str):
    def matches(event: dict[str, Any]) -> bool:
        content = event.get("content", {})
        return (content.get("org.mercato.order", {}).get("id") == order_id
                and "m.relates_to" not in content and "formatted_body" in content)
    return matches


def _edit_of(event_id: str, status: str):
    def matches(event: dict[str, Any]) -> bool:
        content = event.get("content", {})
        relation = content.get("m.relates_to", {})
        return (relation.get("rel_type") == "m.replace" and relation.get("event_id") == event_id
                and content["m.new_content"]["org.mercato.order"]["status"] == status)
    return matches


async def test_an_order_from_api_to_card_edits_notices_and_staff_thread(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    buyer = await new_user(network, http, "buyer")
    slug, shop, staff_room = await _staffed_shop(api, owner)
    me, staff = api.acting_as(buyer.user_id), api.acting_as(owner.user_id)

    cart = await api.call("PUT", f"/me/cart/{slug}/items/lamp", me, json={"quantity": 2})
    assert cart.status == 200 and cart.body["subtotal"] == "60.00", cart
    placed = await api.post("/me/orders", me, {
        "shop": slug, "from_cart": True, "payment": "bank_transfer",
        "delivery": {"kind": "shipping", "address": ADDRESS, "phone": PHONE}})
    assert placed.status == 201, placed
    order_id = placed.body["id"]
    assert (placed.body["status"], placed.body["total"]) == ("placed", "60.00")
    assert placed.body["payment"]["reference"] == f"{slug[:12].upper()}-{order_id}"
    assert (await api.get(f"/me/cart/{slug}", me)).body["items"] == []
    assert (await api.get(f"/shops/{slug}/products/lamp")).body["quantity"] == 1

    # The card arrives from the shop in the buyer's DM, complete in any client.
    dm = await buyer.wait_for_invite(shop)
    await buyer.join(dm)
    card = await buyer.wait_for_message(dm, _order_card(order_id))
    content = card["content"]
    assert card["sender"] == shop and content["msgtype"] == "m.text"
    for text in (f"Order {order_id}", "2 × Desk lamp (lamp) — 30.00 EUR = 60.00 EUR",
                 "Total: 60.00 EUR", ADDRESS, PHONE, "IBAN DE89",
                 f"reference {slug[:12].upper()}-{order_id}"):
        assert text in content["body"], (text, content["body"])
    checker = Allowlist()
    checker.feed(content["formatted_body"])
    assert checker.problems == [] and "<strong>Total: 60.00 EUR</strong>" in \
        content["formatted_body"]
    data = content["org.mercato.order"]
    assert (data["status"], data["total"], data["currency"], data["shop"]) == (
        "placed", "60.00", "EUR", shop)
    assert data["items"] == [{"sku": "lamp", "title": "Desk lamp", "unit_price": "30.00",
                              "quantity": 2, "total": "60.00"}]

    # The staff room gets the order as the root of its thread, without address or phone.
    root = await owner.wait_for_message(staff_room, lambda e: e.get("content", {}).get(
        "org.mercato.order", {}).get("id") == order_id)
    assert buyer.user_id in root["content"]["body"]

    # Nonsense is refused with a sentence, and changes nothing.
    path = f"/shops/{slug}/orders/{order_id}/status"
    assert (await api.post(path, staff, {"status": "confirmed"})).status == 200
    early = await api.post(path, staff, {"status": "shipped", "carrier": "DHL"})
    assert (early.status, early.errcode) == (409, "MERCATO_ORDER_NOT_PAID")
    assert early.error == (f"Order {order_id} is not paid yet; with bank transfer an order "
                           "ships after payment: mark it paid first.")
    assert (await api.post(path, staff, {"status": "paid"})).status == 200
    twice = await api.post(path, staff, {"status": "paid"})
    assert (twice.status, twice.error) == (409, f"Order {order_id} is already paid.")
    shipped = await api.post(path, staff, {
        "status": "shipped", "carrier": "DHL", "tracking": "00340434161234567890",
        "tracking_url": "https://www.dhl.com/de-en/home/tracking.html?tracking-id=0034043416"})
    assert shipped.status == 200, shipped
    assert [h["status"] for h in shipped.body["history"]] == [
        "placed", "confirmed", "paid", "shipped"]

    # The buyer's card is edited in place and a notice makes their client notify.
    edit = await buyer.wait_for_message(dm, _edit_of(card["event_id"], "shipped"))
    new = edit["content"]["m.new_content"]
    assert "Tracking: DHL 00340434161234567890" in new["body"]
    assert new["org.mercato.order"]["tracking"]["carrier"] == "DHL"
    assert [h["status"] for h in new["org.mercato.order"]["status_history"]] == [
        "placed", "confirmed", "paid", "shipped"]
    notice = await buyer.wait_for_message(dm, from_sender(
        shop, contains=f"Your order {order_id} at Shop {slug} was shipped: DHL "
                       "00340434161234567890"))
    assert notice["content"]["msgtype"] == "m.text"
    update = await owner.wait_for_message(staff_room, lambda e: is_threaded_in(
        root["event_id"])(e) and "is now shipped" in e["content"].get("body", ""))
    assert f"Order {order_id} is now shipped: DHL 00340434161234567890" in \
        update["content"]["body"]

    stats = await api.get(f"/shops/{slug}/stats", staff)
    assert stats.body["orders"] == {"count": 1, "by_status": {"shipped": 1},
                                    "revenue": {"EUR": "60.00"}}, stats

    # Address and phone: kept until delivered, then erased on the buyer's word.
    early_forget = await api.post(f"/me/orders/{order_id}/forget", me)
    assert early_forget.status == 409, early_forget
    assert (await api.post(path, staff, {"status": "delivered"})).status == 200
    forgotten = await api.post(f"/me/orders/{order_id}/forget", me)
    assert forgotten.status == 200, forgotten
    assert forgotten.body["delivery"] == {"kind": "shipping", "address": None, "phone": None,
                                          "erased": True}
    assert forgotten.body["total"] == "60.00"
    assert commerce_rows(network, "SELECT address, phone, total FROM orders WHERE id=?",
                         order_id) == [(None, None, 6000)]

    # The sentinel: nowhere but the buyer's DM (and, until erased, the database).
    staff_text = str(await owner.messages(staff_room))
    channel = await owner.resolve_alias(f"#shop_{slug}:localhost")
    channel_text = str(await owner.messages(channel))
    for secret in PERSONAL:
        assert secret not in staff_text and secret not in channel_text
        assert secret not in network.output(), f"{secret} is in a log"


async def test_bad_orders_are_refused_and_change_nothing(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    stranger = await new_user(network, http, "stranger")
    buyer = await new_user(network, http, "buyer")
    slug, _, _ = await _staffed_shop(api, owner)
    other = await open_shop(api, stranger.user_id, "other")
    me = api.acting_as(buyer.user_id)

    def order(*items: tuple[str, Any], **more: Any) -> dict[str, Any]:
        return {"shop": slug, "items": [{"sku": s, "quantity": q} for s, q in items],
                "delivery": {"kind": "pickup"}, "payment": "bank_transfer", **more}

    for body, status, error in (
            (order(("nope", 1)), 404, f"Shop {slug} has no product 'nope'; check the SKU"),
            (order(("lamp", 0)), 400, "items[0].quantity: is 0; order from 1 to 99"),
            (order(("lamp", 100)), 400, "items[0].quantity: is 100; order from 1 to 99"),
            (order(("lamp", 4)), 409, "Only 3 of Desk lamp (lamp) left"),
            (order(("lamp", 1), coupon="NOSUCHCODE"), 400, f"is not a code of Shop {slug}"),
            (order(("lamp", 1), payment="on_delivery"), 400,
             "pay on delivery does not go with pickup; choose bank_transfer"),
            (order(("lamp", 1), delivery={"kind": "none"}), 400,
             "delivery.kind: this shop offers: shipping, pickup")):
        answer = await api.post("/me/orders", me, body)
        assert answer.status == status and error in answer.error, (body, answer)

    placed = await api.post("/me/orders", me, order(("lamp", 1)))
    assert placed.status == 201, placed
    order_id = placed.body["id"]
    intruder = await api.post(f"/shops/{other}/orders/{order_id}/status",
                              api.acting_as(stranger.user_id), {"status": "confirmed"})
    assert intruder.status == 404, intruder
    outsider = await api.post(f"/shops/{slug}/orders/{order_id}/status",
                              api.acting_as(stranger.user_id), {"status": "confirmed"})
    assert (outsider.status, outsider.error) == (403, f"You are not staff of the shop '{slug}'.")
    assert (await api.get(f"/shops/{slug}/orders/{order_id}",
                          api.acting_as(stranger.user_id))).status == 403
    assert (await api.post(f"/me/orders/{order_id}/cancel", me)).status == 200
    ship = await api.post(f"/shops/{slug}/orders/{order_id}/status",
                          api.acting_as(owner.user_id), {"status": "shipped", "carrier": "DHL"})
    assert (ship.status, ship.error) == (
        409, f"Order {order_id} is cancelled; a cancelled order cannot be shipped.")
    listed = await api.get(f"/shops/{slug}/orders?status=cancelled", api.acting_as(owner.user_id))
    assert [o["id"] for o in listed.body["orders"]] == [order_id]
    assert "address" not in listed.body["orders"][0]["delivery"]
    # Lists carry each order's items and history, the buyer's as the shop's.
    mine = await api.get("/me/orders", me)
    for found in (listed.body, mine.body):
        assert found["next"] is None, found
        assert [(i["sku"], i["quantity"]) for i in found["orders"][0]["items"]] == [("lamp", 1)]
        assert [h["status"] for h in found["orders"][0]["history"]] == ["placed", "cancelled"]

    # Adding to the cart adds what is asked to what is there, in one step.
    for _ in range(2):
        added = await api.post(f"/me/cart/{slug}/items", me, {"sku": "lamp"})
        assert added.status == 200, added
    assert [(i["sku"], i["quantity"]) for i in added.body["items"]] == [("lamp", 2)]
    over = await api.post(f"/me/cart/{slug}/items", me, {"sku": "lamp", "quantity": 2})
    assert (over.status, over.error) == (409, "Only 3 of Desk lamp (lamp) left; ask for 3 or "
                                              "fewer."), over

    assert (await api.post(f"/shops/{slug}/suspend", api.operator())).status == 200
    suspended = await api.post("/me/orders", me, order(("lamp", 1)))
    assert (suspended.status, suspended.errcode) == (403, "MERCATO_SHOP_NOT_ACTIVE")
    carts = (await api.get("/me/carts", me)).body["carts"]
    assert [(c["shop"], c["subtotal"], c["note"]) for c in carts] == [
        (slug, "60.00", f"Shop {slug} is suspended and cannot take orders now.")], carts
    # One order was written (then cancelled); its stock came back.
    assert commerce_rows(network, "SELECT status FROM orders WHERE merchant_slug=?",
                         slug) == [("cancelled",)]
    assert commerce_rows(network, "SELECT quantity FROM product WHERE merchant_slug=?",
                         slug) == [(3,)]
