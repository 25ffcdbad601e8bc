"""The first vertical slice: a buyer joins the demo shop's channel and reads its welcome post."""

from __future__ import annotations

import asyncio

import pytest

from mercato_ops.demo_shop import seed_demo_shop
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient, MatrixError


def is_welcome(event: dict) -> bool:
    return (event.get("type") == "m.room.message"
            and "Welcome to Mercato Demo Shop" in event.get("content", {}).get("body", ""))


def demo_cards(events: list[dict], shop: str) -> dict[str, dict]:
    """The product cards the shop posted in the channel, by SKU."""
    return {e["content"]["org.mercato.product"]["sku"]: e for e in events
            if e.get("sender") == shop and "org.mercato.product" in e.get("content", {})}


async def test_demo_json_tells_how_to_log_in(network: RunningNetwork) -> None:
    demo = network.demo
    assert demo["homeserver_url"] == f"http://localhost:{network.config.synapse.port}"
    assert demo["buyer"]["user_id"] == "@buyer:localhost"
    assert demo["merchant"]["user_id"] == "@merchant:localhost"
    assert demo["shop"]["user_id"] == "@shop_demo:localhost"
    assert demo["channel_alias"] == "#shop_demo:localhost"
    assert demo["shop"]["api_key"].startswith("mk_")
    output = network.output()
    assert "Mercato is running." in output
    assert demo["buyer"]["password"] in output
    assert "react 🛒 to a product card" in output
    assert "'buy demo <sku>', then 'checkout demo'" in output
    assert len(demo["products"]) >= 5
    assert {"sku": "tea-sencha", "title": "Sencha green tea, 100 g tin"} in demo["products"]
    assert f"Products: {', '.join(p['sku'] for p in demo['products'])}" in output
    assert demo["coupon_campaign"]["title"] == "10% off your first order"


async def test_buyer_joins_channel_and_reads_welcome_post(
        network: RunningNetwork, buyer: MatrixClient) -> None:
    room_id = await buyer.join("#shop_demo:localhost")
    create = next(e for e in await buyer.full_state(room_id) if e["type"] == "m.room.create")
    assert create["sender"] == "@shop_demo:localhost", "the shop's own Matrix user owns it"
    assert (await buyer.state(room_id, "m.room.name"))["name"] == "Mercato Demo Shop"
    welcome = await buyer.wait_for_message(room_id, is_welcome)
    assert welcome["sender"] == "@shop_demo:localhost"
    content = welcome["content"]
    assert content["msgtype"] == "m.text"
    assert "@shop_demo:localhost" in content["body"]
    assert content["format"] == "org.matrix.custom.html"
    assert "<strong>Welcome to Mercato Demo Shop on Mercato!</strong>" in content["formatted_body"]


async def test_channel_lets_followers_react_but_not_post(
        network: RunningNetwork, buyer: MatrixClient) -> None:
    room_id = await buyer.join("#shop_demo:localhost")
    with pytest.raises(MatrixError) as refused:
        await buyer.send_text(room_id, "spam from a follower")
    assert refused.value.status == 403 and refused.value.errcode == "M_FORBIDDEN"
    welcome = await buyer.wait_for_message(room_id, is_welcome)
    reaction = await buyer.send(room_id, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": welcome["event_id"], "key": "👍"}},
        event_type="m.reaction")
    assert reaction.startswith("$")


async def test_channel_is_listed_in_room_directory(buyer: MatrixClient) -> None:
    # With workers the directory is read from room statistics the main process
    # updates in the background: it may take a moment to show a new channel.
    for _ in range(50):
        rooms = (await buyer.request("GET", "/_matrix/client/v3/publicRooms"))["chunk"]
        if any(r.get("canonical_alias") == "#shop_demo:localhost" for r in rooms):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"the demo channel is not in the room directory: {rooms}")


async def _wait_followers(network: RunningNetwork, http, expected_member: str,
                          present: bool) -> dict:
    headers = {"Authorization": f"Bearer {network.demo['shop']['api_key']}"}
    for _ in range(100):
        async with http.get(f"{network.commerce_url}/api/v1/merchant",
                            headers=headers) as resp:
            assert resp.status == 200
            body = await resp.json()
        rows = network.rows("commerce", "SELECT user_id FROM follower")
        if ((expected_member,) in rows) == present:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"follower table never {'had' if present else 'lost'} "
                         f"{expected_member}: {rows}")


async def test_follow_and_unfollow_are_recorded(
        network: RunningNetwork, merchant: MatrixClient, http) -> None:
    # The demo merchant person follows, then unfollows, the shop's channel.
    room_id = await merchant.join("#shop_demo:localhost")
    body = await _wait_followers(network, http, merchant.user_id, present=True)
    assert body["slug"] == "demo" and body["user_id"] == "@shop_demo:localhost"
    assert body["followers"] >= 1
    assert body["channels"][0]["alias"] == "#shop_demo:localhost"
    await merchant.leave(room_id)
    await _wait_followers(network, http, merchant.user_id, present=False)


async def test_api_refuses_unknown_key(network: RunningNetwork, http) -> None:
    async with http.get(f"{network.commerce_url}/api/v1/merchant",
                        headers={"Authorization": "Bearer mk_not-a-real-key"}) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body["errcode"] == "M_UNKNOWN_TOKEN"
    assert "unknown or the API key was revoked" in body["error"]
    async with http.get(f"{network.commerce_url}/api/v1/merchant") as resp:
        assert resp.status == 401
        assert "Authorization: Bearer" in (await resp.json())["error"]


async def test_shop_directory_lists_demo_shop(network: RunningNetwork, http) -> None:
    async with http.get(f"{network.commerce_url}/api/v1/shops") as resp:
        shops = (await resp.json())["shops"]
    demo = next(s for s in shops if s["slug"] == "demo")
    assert demo["channels"] == ["#shop_demo:localhost"]
    assert demo["user_id"] == "@shop_demo:localhost"


async def test_buyer_finds_the_demo_catalog_and_a_coupon_in_the_channel(
        network: RunningNetwork, buyer: MatrixClient, http) -> None:
    demo = network.demo
    shop = demo["shop"]["user_id"]
    room_id = await buyer.join(demo["channel_alias"])
    coupon = await buyer.wait_for_message(room_id, lambda e: e.get("content", {}).get(
        "org.mercato.post", {}).get("campaign") == demo["coupon_campaign"]["id"], timeout=60)
    assert coupon["sender"] == shop
    assert "10% off your first order" in coupon["content"]["body"]
    assert "React with 🎟️ to this post" in coupon["content"]["body"]

    cards = demo_cards(await buyer.messages(room_id), shop)
    assert sorted(cards) == sorted(p["sku"] for p in demo["products"])
    for sku, card in cards.items():
        content = card["content"]
        assert content["msgtype"] == "m.image", sku
        assert content["url"].startswith("mxc://localhost/"), sku
        assert content["info"]["mimetype"] == "image/jpeg"
        assert 0 < content["info"]["size"] <= 60 * 1024
        assert content["filename"] == f"{sku}.jpg"
    server_name, media_id = cards["mug-teal"]["content"]["url"].removeprefix("mxc://").split("/")
    async with http.get(f"{network.hs_url}/_matrix/client/v1/media/download/{server_name}/"
                        f"{media_id}", headers={"Authorization": f"Bearer {buyer.token}"}) as resp:
        assert resp.status == 200
        assert (await resp.read())[:3] == b"\xff\xd8\xff", "the picture is a JPEG"

    tote = cards["tote-canvas"]["content"]
    assert tote["org.mercato.product"]["price"] == "18.00"
    assert tote["org.mercato.product"]["original_price"] == "24.00"
    assert "(was 24.00 EUR)" in tote["body"]
    tea = cards["tea-sencha"]["content"]
    assert "Only a few left." in tea["body"]
    async with http.get(f"{network.commerce_url}/api/v1/shops/demo/products/tea-sencha") as resp:
        tea_product = await resp.json()
    assert tea_product["stock"] == "in_stock"
    if "quantity" in tea_product:
        assert tea_product["quantity"] == 2


async def test_seeding_the_demo_shop_again_posts_nothing(
        network: RunningNetwork, buyer: MatrixClient) -> None:
    demo = network.demo
    shop = demo["shop"]["user_id"]
    room_id = await buyer.join(demo["channel_alias"])
    await buyer.wait_for_message(room_id, lambda e: e.get("content", {}).get(
        "org.mercato.post", {}).get("campaign") == demo["coupon_campaign"]["id"], timeout=60)
    before = [e["event_id"] for e in await buyer.messages(room_id) if e["sender"] == shop]

    catalog = await seed_demo_shop(network.config, network.config.data_path)

    assert catalog.summary() == {"products": demo["products"],
                                 "coupon_campaign": demo["coupon_campaign"]}
    await asyncio.sleep(2)  # anything posted would be in the room by now
    after = [e["event_id"] for e in await buyer.messages(room_id) if e["sender"] == shop]
    assert after == before
