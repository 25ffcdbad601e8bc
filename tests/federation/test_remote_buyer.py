"""A buyer and a staff member on another homeserver use a Mercato shop over federation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from mercato.matrix.admin import register_user
from mercato_ops.testnet import RunningNetwork
from tests.federation.conftest import RemoteHomeserver, remote_user
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, png


async def join_with_retry(client: MatrixClient, room: str, via: str) -> str:
    """Joins over federation can race the remote server's key fetch: retry briefly."""
    last: Exception | None = None
    for _ in range(20):
        try:
            data = await client.request("POST", f"/_matrix/client/v3/join/{quote(room)}", {},
                                        params={"server_name": via})
            return data["room_id"]
        except Exception as e:  # noqa: BLE001 - reported below if it never works
            last = e
            await asyncio.sleep(0.5)
    raise AssertionError(f"could not join {room}: {last}")


async def test_remote_buyer_follows_receives_claims_and_talks(
        mercato_hs: RunningNetwork, remote_hs: RemoteHomeserver, http, api: Api) -> None:
    server = mercato_hs.config.server_name
    demo = mercato_hs.demo
    shop = demo["shop"]["user_id"]
    key = demo["shop"]["api_key"]
    alias = demo["channel_alias"]
    assert alias == f"#shop_demo:{server}"
    buyer = await remote_user(remote_hs, http, "farbuyer")

    # The shop is found in Mercato's room directory, asked for from the other server.
    listing = await buyer.request("GET", "/_matrix/client/v3/publicRooms",
                                  params={"server": server})
    assert any(r.get("canonical_alias") == alias for r in listing["chunk"]), listing

    room_id = await join_with_retry(buyer, alias, server)
    for _ in range(100):
        status, me = await api.call("GET", "/merchant", key)
        if me["followers"] >= 1:
            break
        await asyncio.sleep(0.3)
    assert me["followers"] >= 1, "the remote follower was not counted"

    # A campaign post with an image and a product card arrive intact over federation.
    status, media = await api.call("POST", "/shops/demo/media", key, data=png())
    assert status == 201, media
    status, product = await api.call("POST", "/shops/demo/products", key, {
        "sku": "far-1", "title": "Wool scarf", "price": "35", "currency": "EUR",
        "image_mxc": media["image_mxc"], "image_info": media["image_info"]})
    assert status == 201, product
    status, shared = await api.call("POST", "/shops/demo/products/far-1/share", key,
                                    {"room_id": room_id})
    assert status == 200, shared
    card = await buyer.wait_for_message(room_id, lambda e: e["event_id"] == shared["event_id"],
                                        timeout=60)
    assert card["content"]["org.mercato.product"]["price"] == "35.00"
    assert card["content"]["url"] == media["image_mxc"]

    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    status, campaign = await api.call("POST", "/shops/demo/campaigns", key, {
        "kind": "coupon", "fields": {"title": "Free shipping"},
        "coupon": {"stock": 3, "expires_at": expires}})
    assert status == 201, campaign
    assert (await api.call("POST", f"/shops/demo/campaigns/{campaign['id']}/schedule",
                           key))[0] == 200
    post = await buyer.wait_for_message(
        room_id, lambda e: e.get("content", {}).get("org.mercato.post", {}).get("campaign")
        == campaign["id"], timeout=60)
    assert post["sender"] == shop

    # Claiming by reaction: the code comes by DM from the shop, over federation.
    await buyer.send(room_id, {"m.relates_to": {"rel_type": "m.annotation",
                                                "event_id": post["event_id"], "key": "🎟️"}},
                     event_type="m.reaction")
    dm_id = await buyer.wait_for_invite(shop, timeout=60)
    await join_with_retry(buyer, dm_id, server)
    code = await buyer.wait_for_message(dm_id, lambda e: "Your code" in e.get(
        "content", {}).get("body", ""), timeout=60)
    assert code["sender"] == shop

    # Customer service: the buyer writes in that DM; staff answer from the staff room.
    staff = await MatrixClient(http, mercato_hs.hs_url).login(
        demo["merchant"]["user_id"], demo["merchant"]["password"])
    status, shop_info = await api.call("GET", "/shops/demo", key)
    staff_room = shop_info["staff_room_id"]
    await staff.join(staff_room)
    question = await buyer.send_text(dm_id, "Do you ship to Norway?")
    relayed = await staff.wait_for_message(
        staff_room, lambda e: "Do you ship to Norway?" in e.get("content", {}).get("body", ""),
        timeout=60)
    root = relayed["content"]["m.relates_to"]["event_id"]
    await staff.send(staff_room, {"msgtype": "m.text", "body": "Yes, in 5 days.",
                                  "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    answer = await buyer.wait_for_message(dm_id, lambda e: e.get("content", {}).get("body")
                                          == "Yes, in 5 days.", timeout=60)
    assert answer["sender"] == shop, "the buyer must hear the shop, not the staff member"
    assert question


async def test_remote_staff_and_shop_bot(
        mercato_hs: RunningNetwork, remote_hs: RemoteHomeserver, http, api: Api) -> None:
    server = mercato_hs.config.server_name
    demo = mercato_hs.demo
    key = demo["shop"]["api_key"]
    shop = demo["shop"]["user_id"]

    # A staff member on the other homeserver is added and invited to the staff room.
    alice = await remote_user(remote_hs, http, "alice")
    status, added = await api.call("POST", "/shops/demo/staff", key,
                                   {"user_id": alice.user_id, "role": "support"})
    assert status == 201, added
    staff_room = await alice.wait_for_invite(shop, timeout=60)
    await join_with_retry(alice, staff_room, server)

    # A local buyer asks; the remote staff member answers in the thread.
    await register_user(http, mercato_hs.hs_url,
                        mercato_hs.config.synapse.registration_shared_secret, "nearbuyer",
                        "near password 1")
    buyer = await MatrixClient(http, mercato_hs.hs_url).login(f"@nearbuyer:{server}",
                                                             "near password 1")
    dm_id = await buyer.create_dm(shop)
    await buyer.wait_for_message(dm_id, lambda e: e["type"] == "m.room.member"
                                 and e["state_key"] == shop
                                 and e["content"]["membership"] == "join")
    await buyer.send_text(dm_id, "Is the scarf warm?")
    relayed = await alice.wait_for_message(
        staff_room, lambda e: "Is the scarf warm?" in e.get("content", {}).get("body", ""),
        timeout=60)
    root = relayed["content"]["m.relates_to"]["event_id"]
    await alice.send(staff_room, {"msgtype": "m.text", "body": "Very warm.",
                                  "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    answer = await buyer.wait_for_message(dm_id, lambda e: e.get("content", {}).get("body")
                                          == "Very warm.", timeout=60)
    assert answer["sender"] == shop

    # The shop bot answers a user of the other homeserver.
    bot = demo["shopbot"]
    bob = await remote_user(remote_hs, http, "bob")
    room_id = await bob.create_dm(bot)
    await bob.wait_for_message(room_id, lambda e: e["type"] == "m.room.member"
                               and e["state_key"] == bot
                               and e["content"]["membership"] == "join", timeout=60)
    await bob.send_text(room_id, "ping")
    pong = await bob.wait_for_message(room_id, lambda e: e.get("sender") == bot
                                      and e.get("content", {}).get("body") == "pong", timeout=60)
    assert pong


async def test_remote_buyer_orders_and_follows_the_order_over_federation(
        mercato_hs: RunningNetwork, remote_hs: RemoteHomeserver, http, api: Api) -> None:
    server = mercato_hs.config.server_name
    demo = mercato_hs.demo
    shop = demo["shop"]["user_id"]
    key = demo["shop"]["api_key"]
    buyer = await remote_user(remote_hs, http, "farorders")
    status, _ = await api.call("POST", "/shops/demo/products", key, {
        "sku": "far-tea", "title": "Mountain tea", "price": "12.50", "currency": "EUR",
        "quantity": 4})
    assert status == 201
    status, settings = await api.call("PUT", "/shops/demo/orders/settings", key, {
        "payment_methods": {"pickup": {}}, "delivery": ["pickup"]})
    assert status == 200, settings

    # The remote buyer orders (as the shop bot would for them); the order card comes by
    # DM from the shop's account, over federation.
    acting = {"Authorization": f"Bearer {mercato_hs.config.commerce.service_token}",
              "X-Mercato-Acting-User": buyer.user_id}
    async with http.post(f"{api.base}/me/orders", headers=acting, json={
            "shop": "demo", "items": [{"sku": "far-tea", "quantity": 2}],
            "delivery": {"kind": "pickup"}, "payment": "pickup"}) as resp:
        placed = await resp.json()
        assert resp.status == 201, placed
    order_id = placed["id"]
    dm_id = await buyer.wait_for_invite(shop, timeout=60)
    await join_with_retry(buyer, dm_id, server)

    def order_card(event: dict) -> bool:
        content = event.get("content", {})
        return content.get("org.mercato.order", {}).get("id") == order_id \
            and "m.relates_to" not in content

    card = await buyer.wait_for_message(dm_id, order_card, timeout=60)
    assert card["sender"] == shop
    assert card["content"]["org.mercato.order"]["total"] == "25.00"
    assert "Total: 25.00 EUR" in card["content"]["body"]

    # The shop confirms: the card is edited in place and a notice follows, over federation.
    status, moved = await api.call("POST", f"/shops/demo/orders/{order_id}/status", key,
                                   {"status": "confirmed"})
    assert status == 200, moved

    def confirmed_edit(event: dict) -> bool:
        content = event.get("content", {})
        return content.get("m.relates_to", {}).get("event_id") == card["event_id"] and \
            content.get("m.new_content", {}).get("org.mercato.order", {}).get("status") \
            == "confirmed"

    await buyer.wait_for_message(dm_id, confirmed_edit, timeout=60)
    await buyer.wait_for_message(dm_id, lambda e: e.get("sender") == shop and order_id in e.get(
        "content", {}).get("body", "") and "confirmed" in e["content"]["body"]
        and "m.relates_to" not in e["content"], timeout=60)

    # The buyer follows it from their own server through the API too, and cancels it.
    async with http.post(f"{api.base}/me/orders/{order_id}/cancel", headers=acting,
                         json={}) as resp:
        cancelled = await resp.json()
        assert resp.status == 200, cancelled
    assert cancelled["status"] == "cancelled"
    status, product = await api.call("GET", "/shops/demo/products/far-tea", key)
    assert product["quantity"] == 4  # the stock came back
