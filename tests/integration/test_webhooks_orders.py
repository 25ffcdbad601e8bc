"""An order's life reaches the shop's back-end (issue 17): a buyer orders through the API,
staff move the order on, and the shop's HTTPS receiver gets order.placed and each status
change, signed, in the order they happened, without the buyer's address or phone."""

from __future__ import annotations

import json

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.commerce_api import CommerceApi, new_user, open_shop
from tests.integration.local_https import Certificate
from tests.integration.webhook_receiver import WebhookReceiver

ADDRESS = "Hookstraat 4712, 1012 Amsterdam"
PHONE = "+31 20 5550177661"


async def test_an_orders_events_reach_the_back_end_in_order(
        network: RunningNetwork, http: aiohttp.ClientSession,
        shop_certificate: Certificate) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "hookowner")
    buyer = await new_user(network, http, "hookbuyer")
    slug = await open_shop(api, owner.user_id, "hooks")
    staff, me = api.acting_as(owner.user_id), api.acting_as(buyer.user_id)
    assert (await api.post(f"/shops/{slug}/products", staff, {
        "sku": "mug", "title": "Mug", "price": "8.00", "currency": "EUR"})).status == 201
    settings = await api.call("PUT", f"/shops/{slug}/orders/settings", staff, json={
        "payment_methods": {"on_delivery": {}}, "delivery": ["shipping"]})
    assert settings.status == 200, settings
    receiver = await WebhookReceiver(shop_certificate).start()
    try:
        hook = await api.call("PUT", f"/shops/{slug}/webhook", staff, json={"url": receiver.url})
        assert hook.status == 200, hook
        receiver.secret = hook.body["secret"]

        assert (await api.call("PUT", f"/me/cart/{slug}/items/mug", me,
                               json={"quantity": 1})).status == 200
        placed = await api.post("/me/orders", me, {
            "shop": slug, "from_cart": True, "payment": "on_delivery",
            "delivery": {"kind": "shipping", "address": ADDRESS, "phone": PHONE}})
        assert placed.status == 201, placed
        order_id = placed.body["id"]
        path = f"/shops/{slug}/orders/{order_id}/status"
        assert (await api.post(path, staff, {"status": "confirmed"})).status == 200
        assert (await api.post(path, staff, {"status": "shipped", "carrier": "DHL",
                                             "tracking": "00340434161234567890"})).status == 200
        await receiver.wait_for(3)
    finally:
        await receiver.stop()

    events = receiver.processed
    assert receiver.bad_signatures == []
    assert [e["type"] for e in events] == ["order.placed", "order.status_changed",
                                           "order.status_changed"]
    assert {e["shop"] for e in events} == {slug}
    assert [e["data"]["id"] for e in events] == [order_id] * 3
    assert [e["data"]["status"] for e in events] == ["placed", "confirmed", "shipped"]
    everything = json.dumps(events)
    assert "Hookstraat" not in everything and "5550177661" not in everything
    log = await api.get(f"/shops/{slug}/webhook/deliveries", staff)
    assert [d["subject"] for d in log.body["deliveries"]] == [order_id] * 3
    assert {d["status"] for d in log.body["deliveries"]} == {"delivered"}
