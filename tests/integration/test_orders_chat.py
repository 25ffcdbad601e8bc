"""Ordering in chat against a real Synapse, from a plain Matrix client: a buyer reacts 🛒 to
a product card in the shop's channel, shops in their DM with the shop (buy, cart, cart
remove), checks out through the dialog to the order card, and staff move the order on by
replying in its staff-room thread. Commands and checkout answers stay out of the staff
room, an ordinary question still reaches it, and the address never does."""

from __future__ import annotations

from typing import Any

import aiohttp

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
    thread_reply,
)

ADDRESS = "Ada Lovelace\nChatweg 8086\n10115 Berlin"
PHONE = "+49 30 5550178442"
PERSONAL = ("Chatweg 8086", "5550178442")


async def _shop_with_card(api: CommerceApi, owner: MatrixClient,
                          buyer: MatrixClient) -> tuple[str, str, str, str]:
    """A shop selling a mug (card in its channel, which the buyer follows) and a lamp,
    taking bank transfer or payment on delivery: (slug, shop, staff room, card event)."""
    slug = await open_shop(api, owner.user_id, "chat")
    staff = api.acting_as(owner.user_id)
    for sku, title, price in (("mug", "Stoneware mug", "12.50"), ("lamp", "Desk lamp", "30.00")):
        made = await api.post(f"/shops/{slug}/products", staff, {
            "sku": sku, "title": title, "price": price, "currency": "EUR", "quantity": 5})
        assert made.status == 201, made
    settings = await api.call("PUT", f"/shops/{slug}/orders/settings", staff, json={
        "payment_methods": {"bank_transfer": {"details": "IBAN DE89 3704 0044 0532 0130 00"},
                            "on_delivery": {}},
        "delivery": ["shipping", "pickup"]})
    assert settings.status == 200, settings
    staff_room = (await api.shop(slug))["staff_room_id"]
    await accept_invite(owner, staff_room)
    channel = await buyer.join(f"#shop_{slug}:localhost")
    shared = await api.post(f"/shops/{slug}/products/mug/share", staff, {"room_id": channel})
    assert shared.status == 200, shared
    card = await buyer.wait_for_message(channel, lambda e: e["event_id"] == shared.body[
        "event_id"])
    return slug, f"@shop_{slug}:localhost", staff_room, card["event_id"]


async def _say(buyer: MatrixClient, dm: str, shop: str, text: str, expect: str) -> str:
    """The buyer writes in the DM; the shop's answer to it, which must contain `expect`."""
    sent = await buyer.send_text(dm, text)
    seen = await buyer.messages(dm)
    after = [e["event_id"] for e in seen].index(sent)
    answer = await buyer.wait_for_message(dm, lambda e: from_sender(shop, contains=expect)(e)
                                          and e["event_id"] not in
                                          [x["event_id"] for x in seen[:after + 1]])
    return answer["content"]["body"]


def _in_thread(root: str, contains: str):
    def matches(event: dict[str, Any]) -> bool:
        return is_threaded_in(root)(event) and contains in event["content"].get("body", "")
    return matches


async def test_a_buyer_orders_by_chat_and_staff_ship_it_from_the_thread(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    buyer = await new_user(network, http, "buyer")
    slug, shop, staff_room, card = await _shop_with_card(api, owner, buyer)
    me = api.acting_as(buyer.user_id)

    # 🛒 (with the variation selector some keyboards add) on the card in the channel.
    channel = await buyer.resolve_alias(f"#shop_{slug}:localhost")
    await buyer.send(channel, {"m.relates_to": {"rel_type": "m.annotation", "event_id": card,
                                                "key": "🛒\ufe0f"}}, "m.reaction")
    dm = await buyer.wait_for_invite(shop)
    await buyer.join(dm)
    added = await buyer.wait_for_message(dm, from_sender(shop, contains="🛒 Added 1 × "
                                                                        "Stoneware mug"))
    assert "Type checkout to order" in added["content"]["body"]
    assert "1 × Stoneware mug (mug) — 12.50 EUR" in added["content"]["body"]
    assert (await api.get(f"/me/cart/{slug}", me)).body["subtotal"] == "12.50"

    # Commands in the DM, answered by the shop.
    assert "1 × Stoneware mug (mug)" in await _say(buyer, dm, shop, "buy lamp 2",
                                                   "Added 2 × Desk lamp.")
    assert "Subtotal: 12.50 EUR" in await _say(buyer, dm, shop, "cart remove lamp",
                                               "Removed lamp.")
    assert "has no product 'nope'" in await _say(buyer, dm, shop, "buy nope", "Sorry")
    # An ordinary question still reaches the staff room.
    await buyer.send_text(dm, "Is the mug dishwasher safe?")
    await owner.wait_for_message(staff_room, from_sender(
        shop, contains="Is the mug dishwasher safe?"))

    # The checkout dialog: bad answers are asked again.
    await _say(buyer, dm, shop, "checkout", "How should your order reach you?")
    await _say(buyer, dm, shop, "by pigeon", "I did not get that choice.")
    await _say(buyer, dm, shop, "1", "Send the whole postal address")
    await _say(buyer, dm, shop, "x", "That is too short for a postal address.")
    await _say(buyer, dm, shop, ADDRESS, "A phone number for the courier")
    payment = await _say(buyer, dm, shop, PHONE, "How will you pay?")
    assert "1. Bank transfer\n2. Pay on delivery" in payment
    await _say(buyer, dm, shop, "bank transfer", "coupon code")
    summary = await _say(buyer, dm, shop, "skip", "Your order:")
    for text in ("1 × Stoneware mug (mug) — 12.50 EUR", "Total: 12.50 EUR",
                 "Payment: Bank transfer", "Chatweg 8086", "Type confirm"):
        assert text in summary, (text, summary)
    thanks = await _say(buyer, dm, shop, "confirm", "Thank you! Order ")
    order_id = thanks.split("Order ", 1)[1][:6]
    order_card = await buyer.wait_for_message(dm, lambda e: e.get("content", {}).get(
        "org.mercato.order", {}).get("id") == order_id and "m.relates_to" not in e["content"])
    assert order_card["sender"] == shop
    assert order_card["content"]["org.mercato.order"]["status"] == "placed"
    assert order_id in await _say(buyer, dm, shop, "orders", "Your orders at")

    # Staff move it on by replying in the order's thread.
    root = (await owner.wait_for_message(staff_room, lambda e: e.get("content", {}).get(
        "org.mercato.order", {}).get("id") == order_id and "m.relates_to" not in e[
        "content"]))["event_id"]
    for text, expect in (
            ("confirm", f"Done: order {order_id} is confirmed"),
            ("ship DHL 123", f"Not done: Order {order_id} is not paid yet"),
            ("paid", f"Done: order {order_id} is paid"),
            ("ship DHL 123", f"Done: order {order_id} is shipped")):
        await owner.send(staff_room, thread_reply(root, text, root))
        await owner.wait_for_message(staff_room, _in_thread(root, expect))
    edit = await buyer.wait_for_message(dm, lambda e: e.get("content", {}).get(
        "m.relates_to", {}).get("event_id") == order_card["event_id"] and e["content"][
        "m.new_content"]["org.mercato.order"]["status"] == "shipped")
    assert "DHL 123" in edit["content"]["m.new_content"]["body"]
    await buyer.wait_for_message(dm, from_sender(
        shop, contains=f"Your order {order_id} at Shop {slug} was shipped: DHL 123"))
    assert commerce_rows(network, "SELECT status, carrier, tracking FROM orders WHERE id=?",
                         order_id) == [("shipped", "DHL", "123")]

    # Commands and checkout answers were not relayed; the address is not in the room.
    staff_text = str(await owner.messages(staff_room, limit=200))
    assert f"{buyer.user_id}: Is the mug dishwasher safe?" in staff_text
    for typed in ("buy lamp 2", "cart remove lamp", "checkout", "by pigeon", "skip"):
        assert f"{buyer.user_id}: {typed}" not in staff_text, typed
    for secret in PERSONAL:
        assert secret not in staff_text
        assert secret not in network.output(), f"{secret} is in a log"
    assert commerce_rows(network, "SELECT COUNT(*) FROM checkout_draft") == [(0,)]


async def test_staff_without_the_orders_permission_are_told_so(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    editor = await new_user(network, http, "editor")
    buyer = await new_user(network, http, "buyer")
    slug, shop, staff_room, _ = await _shop_with_card(api, owner, buyer)
    added = await api.add_staff(slug, api.acting_as(owner.user_id), editor.user_id, "editor")
    assert added.status in (200, 201), added
    await accept_invite(editor, staff_room)
    me = api.acting_as(buyer.user_id)
    assert (await api.call("PUT", f"/me/cart/{slug}/items/mug", me,
                           json={"quantity": 1})).status == 200
    placed = await api.post("/me/orders", me, {"shop": slug, "from_cart": True,
                                               "payment": "bank_transfer",
                                               "delivery": {"kind": "pickup"}})
    assert placed.status == 201, placed
    order_id = placed.body["id"]
    root = (await owner.wait_for_message(staff_room, lambda e: e.get("content", {}).get(
        "org.mercato.order", {}).get("id") == order_id))["event_id"]

    await editor.send(staff_room, thread_reply(root, "confirm", root))
    refusal = await editor.wait_for_message(staff_room, _in_thread(root, "Not done:"))
    assert "is editor, which may not manage orders" in refusal["content"]["body"]
    await editor.send(staff_room, thread_reply(root, "Nice, a first order!", root))
    await owner.send(staff_room, thread_reply(root, "decline", root))
    usage = await owner.wait_for_message(staff_room, _in_thread(root, "Usage: decline"))
    assert usage["sender"] == shop
    await owner.send(staff_room, thread_reply(root, "decline sold out at the fair", root))
    await owner.wait_for_message(staff_room, _in_thread(root, f"Done: order {order_id} is "
                                                              "declined"))
    assert commerce_rows(network, "SELECT status, reason FROM orders WHERE id=?",
                         order_id) == [("declined", "sold out at the fair")]
