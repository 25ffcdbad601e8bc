"""Ordering through the shop bot on the real network: a buyer fills a cart and checks out
by chat, the order card arrives from the shop in the buyer's DM, support staff move the
order on by command and the buyer's card is edited; who lacks the orders permission is
refused with a sentence, and bad input is answered with the API's own."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.commerce_api import CommerceApi, new_user, open_shop
from tests.integration.test_shopbot_merchant import Chat

ADDRESS = "Lampweg 7, 10115 Berlin"


def _card(order_id: str) -> Any:
    def matches(event: dict[str, Any]) -> bool:
        content = event.get("content", {})
        return (content.get("org.mercato.order", {}).get("id") == order_id
                and "m.relates_to" not in content)
    return matches


def _card_edit(order_id: str, status: str) -> Any:
    def matches(event: dict[str, Any]) -> bool:
        content = event.get("content", {})
        new = content.get("m.new_content", {}).get("org.mercato.order", {})
        return (content.get("m.relates_to", {}).get("rel_type") == "m.replace"
                and new.get("id") == order_id and new.get("status") == status)
    return matches


def _placed_id(answer: str) -> str:
    found = re.match(r"✅ Order ([A-Z0-9]{6}) placed at ", answer)
    assert found, answer
    return found.group(1)


async def _shop_with_lamps(api: CommerceApi, owner: str) -> str:
    """An approved shop selling a counted desk lamp, taking payment at pickup or on
    delivery."""
    slug = await open_shop(api, owner, "botorders")
    staff = api.acting_as(owner)
    made = await api.post(f"/shops/{slug}/products", staff, {
        "sku": "lamp", "title": "Desk lamp", "price": "30.00", "currency": "EUR",
        "quantity": 5})
    assert made.status == 201, made
    settings = await api.call("PUT", f"/shops/{slug}/orders/settings", staff, json={
        "payment_methods": {"pickup": {}, "on_delivery": {}},
        "delivery": ["shipping", "pickup"]})
    assert settings.status == 200, settings
    return slug


async def test_a_buyer_orders_by_chat_and_support_moves_the_order_on(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    buyer = await new_user(network, http, "buyer")
    support = await new_user(network, http, "support")
    analyst = await new_user(network, http, "analyst")
    slug = await _shop_with_lamps(api, owner.user_id)
    shop_user = f"@shop_{slug}:localhost"
    for member, role in ((support, "support"), (analyst, "analyst")):
        added = await api.add_staff(slug, api.acting_as(owner.user_id), member.user_id, role)
        assert added.status in (200, 201), added

    chat = await Chat.direct(network, buyer)
    assert (await chat.say(f"buy {slug} lamp 2")).startswith(
        f"🛒 2 × Desk lamp (lamp) in your cart at {slug}. Cart subtotal: 60.00 EUR.")
    # Quantities out of range, an unknown product, too many in the cart: refused, with why.
    assert "order from 1 to 99 of a product at a time" in await chat.say(f"buy {slug} lamp 0")
    assert (await chat.say(f"buy {slug} teapot")).startswith(
        f"Shop {slug} has no product 'teapot'; check the SKU on its card.")
    too_many = await chat.say(f"buy {slug} lamp 98")
    assert "order from 1 to 99" in too_many and "100" in too_many, too_many
    shown = await chat.say(f"cart {slug}")
    assert "2 × Desk lamp (lamp) — 30.00 EUR" in shown and "Subtotal: 60.00 EUR" in shown
    assert f"{slug} — 2 items — 60.00 EUR" in await chat.say("cart")

    # Checkout without choices says what the shop offers and what to type.
    asked = await chat.say(f"checkout {slug}")
    assert f"For example: checkout {slug} delivery=pickup payment=pickup" in asked, asked
    assert f"open your chat with the shop ({shop_user}) and type checkout there" in asked
    placed = await chat.say(f"checkout {slug} delivery=pickup payment=pickup")
    order_id = _placed_id(placed)
    assert placed.startswith(f"✅ Order {order_id} placed at {slug}: 60.00 EUR."), placed

    # The order card comes from the shop itself, in the buyer's DM with it.
    dm = await buyer.wait_for_invite(shop_user)
    await buyer.join(dm)
    card = await buyer.wait_for_message(dm, _card(order_id))
    assert card["sender"] == shop_user
    assert card["content"]["org.mercato.order"]["status"] == "placed"
    assert (await api.get(f"/me/cart/{slug}", api.acting_as(buyer.user_id))).body["items"] \
        == []

    listed = await chat.say("orders")
    assert f"{order_id} — {slug} — 2 items — 60.00 EUR — placed" in listed, listed
    details = await chat.say(f"order {order_id.lower()}")
    assert details.startswith(f"Order {order_id} at {slug} — placed, waiting for the shop")
    assert "Delivery: pickup at the shop" in details
    assert (await chat.say(f"cancel {order_id}")).startswith(
        f"Order {order_id} at {slug} is cancelled")
    await buyer.wait_for_message(dm, _card_edit(order_id, "cancelled"))

    # A second order, shipped to an address typed in quotes.
    await chat.say(f"buy {slug} lamp")
    second = _placed_id(await chat.say(
        f'checkout {slug} delivery=shipping payment=on_delivery address="{ADDRESS}"'))
    await buyer.wait_for_message(dm, _card(second))

    # An analyst reads stats, not orders.
    analysts = await Chat.direct(network, analyst)
    assert await analysts.say(f"order {second} confirm") == (
        f"order {second} confirm is for the shop's owners and support staff of '{slug}' "
        "(the orders permission); your role there is analyst. Ask an owner to change it "
        "(staff add).")
    assert (await analysts.say("orders all")).startswith(
        f"orders is for the shop's owners and support staff of '{slug}'")
    assert (await api.get(f"/shops/{slug}/orders/{second}", api.acting_as(owner.user_id))
            ).body["status"] == "placed"

    desk = await Chat.direct(network, support)
    waiting = await desk.say("orders placed")
    assert f"{second} — {buyer.user_id} — 1 item — 30.00 EUR — placed" in waiting, waiting
    assert order_id not in waiting
    seen = await desk.say(f"order {second}")
    assert f"Buyer: {buyer.user_id}" in seen and ADDRESS in seen, seen
    assert (await desk.say(f"order {second} confirm")).startswith(
        f"Order {second} of {slug} is now confirmed.")
    await buyer.wait_for_message(dm, _card_edit(second, "confirmed"))
    shipped = await desk.say(
        f"order {second} ship DHL 00340434161234567890 "
        "https://www.dhl.com/de-en/home/tracking.html?tracking-id=0034043416")
    assert shipped.startswith(f"Order {second} of {slug} is now shipped with DHL "
                              "(00340434161234567890)."), shipped
    edit = await buyer.wait_for_message(dm, _card_edit(second, "shipped"))
    assert "00340434161234567890" in edit["content"]["m.new_content"]["body"]
    assert await desk.say(f"order {second} ship DHL 1") == f"Order {second} is already shipped."
    assert (await chat.say(f"cancel {second}")).startswith(f"Order {second} was already shipped")


async def test_a_suspended_shop_takes_no_order_by_chat(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    buyer = await new_user(network, http, "buyer")
    slug = await _shop_with_lamps(api, owner.user_id)
    chat = await Chat.direct(network, buyer)
    await chat.say(f"buy {slug} lamp")
    suspended = await api.post(f"/shops/{slug}/suspend", api.operator(), {"reason": "test"})
    assert suspended.status == 200, suspended
    refused = await chat.say(f"buy {slug} lamp")
    assert refused == f"Shop {slug} is suspended and cannot take orders now.", refused
    # The cart is still listed, saying why it cannot be ordered now.
    carts = await chat.say("cart")
    assert f"{slug} — 1 item — 30.00 EUR — Shop {slug} is suspended and cannot take orders " \
        "now." in carts, carts
    assert (await chat.say(f"checkout {slug} delivery=pickup payment=pickup")) == refused
    assert (await api.get("/me/orders", api.acting_as(buyer.user_id))).body["orders"] == []
