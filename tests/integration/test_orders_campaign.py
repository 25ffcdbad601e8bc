"""A coupon campaign brings an order, end to end against a real Synapse: the shop posts a
coupon campaign linking to a product in its channel, a follower claims a code and orders
the product with it through the API; the discount is on the order card in their DM, the
stats API (and the shop bot's `stats`) count the order, its revenue per currency and the
campaign that brought it; the same code again and another shop's code are refused with
the reason."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.commerce_api import CommerceApi, new_user, open_shop
from tests.integration.test_shopbot_merchant import Chat


async def _coupon_campaign(api: CommerceApi, slug: str, owner: str, title: str,
                           text: str) -> dict[str, Any]:
    """A coupon campaign taking 10% off at checkout, sent now to the shop's channel."""
    staff = api.acting_as(owner)
    made = await api.post(f"/shops/{slug}/campaigns", staff, {
        "kind": "coupon", "fields": {"title": title, "text": text},
        "coupon": {"stock": 5, "percent_off": 10,
                   "expires_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}})
    assert made.status == 201, made
    sent = await api.post(f"/shops/{slug}/campaigns/{made.body['id']}/schedule", staff)
    assert sent.status == 200, sent
    return made.body


async def _claimed_code(api: CommerceApi, buyer: MatrixClient, campaign: dict[str, Any]) -> str:
    me = api.acting_as(buyer.user_id)
    # A buyer claims once the coupon's post is out; on workers that can take a moment.
    for _ in range(60):
        claimed = await api.post(f"/coupons/{campaign['coupon_id']}/claim", me)
        if claimed.status != 404:
            break
        await asyncio.sleep(0.5)
    assert claimed.status == 200, claimed
    codes = (await api.get("/me/coupons", me)).body["coupons"]
    return next(c["code"] for c in codes if c["coupon"] == campaign["coupon_id"])


def _posted(shop: str, title: str) -> Any:
    def matches(event: dict[str, Any]) -> bool:
        return event.get("sender") == shop and title in event.get("content", {}).get("body", "")
    return matches


async def test_a_code_from_a_campaign_is_spent_on_an_order_the_campaign_is_counted_for(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    buyer = await new_user(network, http, "buyer")
    rival = await new_user(network, http, "rival")
    slug = await open_shop(api, owner.user_id, "coupons")
    shop = f"@shop_{slug}:localhost"
    staff, me = api.acting_as(owner.user_id), api.acting_as(buyer.user_id)
    made = await api.post(f"/shops/{slug}/products", staff, {
        "sku": "lamp", "title": "Desk lamp", "price": "30.00", "currency": "EUR",
        "quantity": 5})
    assert made.status == 201, made
    channel = await buyer.join(f"#shop_{slug}:localhost")

    # The test network serves Mercato over http; posts link over https, which counts too.
    page = f"https://localhost:{network.config.commerce.port}/p/{slug}/lamp"
    campaign = await _coupon_campaign(api, slug, owner.user_id, "Lamp week",
                                      f"10% off our desk lamp: {page}")
    post = await buyer.wait_for_message(channel, _posted(shop, "Lamp week"))
    assert page in post["content"]["body"]
    code = await _claimed_code(api, buyer, campaign)

    placed = await api.post("/me/orders", me, {
        "shop": slug, "items": [{"sku": "lamp", "quantity": 2}],
        "delivery": {"kind": "pickup"}, "payment": "pickup", "coupon": code.lower()})
    assert placed.status == 201, placed
    order = placed.body
    assert (order["subtotal"], order["discount"], order["total"], order["coupon"],
            order["campaign"]) == ("60.00", "6.00", "54.00", code, campaign["id"]), order

    # The discount is on the order card the buyer's client shows.
    dm = await buyer.wait_for_invite(shop)
    await buyer.join(dm)
    card = await buyer.wait_for_message(dm, lambda e: e.get("content", {}).get(
        "org.mercato.order", {}).get("id") == order["id"])
    assert f"Discount ({code}): −6.00 EUR" in card["content"]["body"], card["content"]["body"]
    assert "Total: 54.00 EUR" in card["content"]["body"]
    assert card["content"]["org.mercato.order"]["discount"] == "6.00"

    # The stats count the order, its revenue and the campaign that brought it.
    stats = (await api.get(f"/shops/{slug}/stats", staff)).body
    assert stats["orders"] == {"count": 1, "by_status": {"placed": 1},
                               "revenue": {"EUR": "54.00"}}, stats["orders"]
    row = next(c for c in stats["campaigns"] if c["id"] == campaign["id"])
    assert (row["orders"], row["claims"]) == (1, 1), row
    desk = await Chat.direct(network, owner)
    said = await desk.say(f"stats --shop {slug}")
    for line in ("Orders: 1 (1 placed).",
                 "Revenue (orders not cancelled, declined or refunded): 54.00 EUR.",
                 f"Orders from campaigns: #{campaign['id']} Lamp week — 1."):
        assert line in said, (line, said)

    # The same code again, and a code of another shop, are refused with the reason.
    again = await api.post("/me/orders", me, {
        "shop": slug, "items": [{"sku": "lamp", "quantity": 1}],
        "delivery": {"kind": "pickup"}, "payment": "pickup", "coupon": code})
    assert (again.status, again.error) == (400, f"coupon: {code} was already used"), again
    other = await open_shop(api, rival.user_id, "rival")
    await buyer.join(f"#shop_{other}:localhost")
    foreign = await _claimed_code(api, buyer, await _coupon_campaign(
        api, other, rival.user_id, "Rival week", "10% off everything"))
    refused = await api.post("/me/orders", me, {
        "shop": slug, "items": [{"sku": "lamp", "quantity": 1}],
        "delivery": {"kind": "pickup"}, "payment": "pickup", "coupon": foreign})
    assert (refused.status, refused.error) == (
        400, f"coupon: {foreign} is not a code of Shop {slug}"), refused
    # Nothing more was ordered, and the lamps of the one order stay taken.
    assert (await api.get(f"/shops/{slug}/products/lamp")).body["quantity"] == 3
    assert len((await api.get("/me/orders", me)).body["orders"]) == 1
