"""Catalog, cards, alerts, campaigns and coupons through the shop bot, on the real network.

Merchants and buyers type commands in DMs with @shopbot as any client would; the
commerce API (with the operator's token or the shop's key) and a second client
(a follower in the channel) witness what the commands did.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.integration.test_shopbot_merchant import Chat


def from_bot(chat: Chat, predicate: Any) -> Any:
    return lambda e: e.get("sender") == chat.bot and predicate(e)


def replies_to(event_id: str) -> Any:
    return lambda e: e.get("content", {}).get("m.relates_to", {}).get(
        "m.in_reply_to", {}).get("event_id") == event_id


async def wait_for_dm_from(client: MatrixClient, sender: str, timeout: float = 30) -> str:
    """Join the DM `sender` invites `client` to; its room ID."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync = await client.sync(timeout_ms=1000)
        for room_id, room in sync.get("rooms", {}).get("invite", {}).items():
            if any(e.get("sender") == sender
                   for e in room.get("invite_state", {}).get("events", [])):
                await client.join(room_id)
                return room_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"no DM from {sender}")


async def upload(network: RunningNetwork, http: aiohttp.ClientSession, user: MatrixClient,
                 data: bytes, filename: str, mimetype: str) -> str:
    async with http.post(f"{network.hs_url}/_matrix/media/v3/upload",
                         params={"filename": filename}, data=data,
                         headers={"Authorization": f"Bearer {user.token}",
                                  "Content-Type": mimetype}) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["content_uri"])


async def import_route_exists(network: RunningNetwork, http: aiohttp.ClientSession) -> bool:
    async with http.get(f"{network.commerce_url}/api/v1/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    return "/api/v1/shops/{slug}/products/import" in paths


async def test_a_merchant_adds_lists_edits_and_imports_products(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    chat = await Chat.direct(network, owner)

    # The shop's own verified site: the link rules of posts hold for products too.
    added = await chat.say("products add mug-1 24 eur Stoneware mug --description Holds "
                           f"350 ml --url https://{slug}.example/mug")
    assert added.splitlines()[0] == f"Added mug-1 — Stoneware mug — 24.00 EUR — in stock in " \
                                    f"{slug}."
    status, product = await api.call("GET", f"/shops/{slug}/products/mug-1", key)
    assert status == 200
    assert (product["title"], product["price"], product["currency"], product["description"],
            product["url"]) == ("Stoneware mug", "24.00", "EUR", "Holds 350 ml",
                                f"https://{slug}.example/mug")
    listed = await chat.ask("products list")
    assert "mug-1 — Stoneware mug — 24.00 EUR — in stock" in listed["body"]
    assert "<table>" in listed["formatted_body"]
    assert (await chat.say("products add mug-1 1 EUR Again")).startswith(
        "The SKU 'mug-1' already exists in your catalog")

    edited = await chat.say("products edit mug-1 --price 19.90 --original-price 24 "
                            "--stock out")
    assert edited.startswith("Changed: mug-1 — Stoneware mug — 19.90 EUR (was 24.00) — "
                             "out of stock")
    status, product = await api.call("GET", f"/shops/{slug}/products/mug-1", key)
    assert (product["price"], product["original_price"], product["stock"]) == (
        "19.90", "24.00", "out_of_stock")

    # Import: the bot asks for the file, the file completes the command.
    asked = await chat.say("products import --currency EUR")
    assert asked.startswith("Send me the CSV file now")
    csv = b"sku,title,price\ntee-1,Logo tee,15.00\nbad-1,Broken,abc\n"
    mxc = await upload(network, http, owner, csv, "catalog.csv", "text/csv")
    file_id = await owner.send(chat.room_id, {
        "msgtype": "m.file", "body": "catalog.csv", "filename": "catalog.csv", "url": mxc,
        "info": {"mimetype": "text/csv", "size": len(csv)}})
    report = (await owner.wait_for_message(chat.room_id, from_bot(chat, replies_to(file_id))))
    body = report["content"]["body"]
    if await import_route_exists(network, http):
        assert body.startswith(f"Imported catalog.csv into {slug}: 2 rows, 1 new, 0 updated, "
                               "1 refused"), body
        assert "row 2 (bad-1)" in body or "(bad-1)" in body
        status, tee = await api.call("GET", f"/shops/{slug}/products/tee-1", key)
        assert status == 200 and tee["price"] == "15.00"
    else:
        assert body.startswith("Importing a CSV file is not available on this Mercato "
                               "server yet"), body

    question = await chat.say("products remove mug-1")
    assert question.endswith("React ✅ to remove it or ❌ to keep it — or type yes or no.")
    await owner.send_text(chat.room_id, "no")
    await owner.wait_for_message(chat.room_id, from_bot(chat, lambda e: e["content"].get(
        "body") == f"OK, mug-1 stays in the catalog of {slug}."))
    assert (await api.call("GET", f"/shops/{slug}/products/mug-1", key))[0] == 200


async def test_buyers_get_cards_by_command_and_by_pasting_a_link(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    status, product = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "tea-9", "title": "Jasmine tea", "price": "7.50", "currency": "CNY"})
    assert status == 201, product
    buyer = await new_user(network, http, "buyer")
    chat = await Chat.direct(network, buyer)

    await buyer.send_text(chat.room_id, f"share {slug} tea-9")
    card = await buyer.wait_for_message(chat.room_id, from_bot(
        chat, lambda e: "org.mercato.product" in e.get("content", {})))
    content = card["content"]
    assert content["msgtype"] in ("m.text", "m.image")
    assert content["org.mercato.product"]["sku"] == "tea-9"
    assert content["org.mercato.product"]["shop_slug"] == slug
    assert "Jasmine tea — 7.50 CNY" in content["body"]
    assert "m.relates_to" not in content  # forwarded as it is
    assert (await chat.say(f"share {slug} nope")) == f"There is no product 'nope' in '{slug}'."

    # A pasted link, in the DM and in a group with the bot, is answered with the card.
    link_id = await buyer.send_text(chat.room_id, f"What about this? {product['page']}")
    unfurled = await buyer.wait_for_message(chat.room_id, from_bot(chat, replies_to(link_id)))
    assert unfurled["content"]["org.mercato.product"]["sku"] == "tea-9"
    assert unfurled["content"]["body"] == content["body"]

    friend = await new_user(network, http, "friend")
    group = await buyer.request("POST", "/_matrix/client/v3/createRoom", {
        "invite": [chat.bot, friend.user_id], "preset": "private_chat"})
    group_id = group["room_id"]
    await friend.join(group_id)
    await buyer.wait_for_message(group_id, lambda e: e["type"] == "m.room.member"
                                 and e["state_key"] == chat.bot
                                 and e["content"]["membership"] == "join")
    pasted = await friend.send_text(group_id, f"{product['page']} is cheap")
    in_group = await friend.wait_for_message(group_id, from_bot(chat, replies_to(pasted)))
    assert in_group["content"]["org.mercato.product"]["sku"] == "tea-9"
    # The bot does not answer its own card, nor an ordinary message in the group.
    await friend.send_text(group_id, "thanks!")
    await asyncio.sleep(1.5)
    bot_messages = [e for e in await friend.messages(group_id)
                    if e.get("sender") == chat.bot and e["type"] == "m.room.message"]
    assert len(bot_messages) == 1


async def test_an_alert_by_command_gives_one_dm_on_a_price_drop(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    assert (await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "lamp", "title": "Desk lamp", "price": "40.00", "currency": "EUR"}))[0] == 201
    buyer = await new_user(network, http, "buyer")
    chat = await Chat.direct(network, buyer)

    set_alert = await chat.say(f"alert {slug} lamp")
    assert set_alert.startswith(f"🔔 Alert set on lamp of {slug} (now 40.00 EUR).")
    assert f"{slug} lamp — set at 40.00 — waiting" in await chat.say("alerts")

    assert (await api.call("PATCH", f"/shops/{slug}/products/lamp", key,
                           {"price": "32.00"}))[0] == 200
    dm_id = await wait_for_dm_from(buyer, shop)
    alert = await buyer.wait_for_message(dm_id, lambda e: "🔔" in e.get("content", {}).get(
        "body", ""))
    assert alert["sender"] == shop
    assert "Desk lamp is now 32.00 EUR (was 40.00 EUR)" in alert["content"]["body"]
    assert (await api.call("PATCH", f"/shops/{slug}/products/lamp", key,
                           {"price": "30.00"}))[0] == 200
    await asyncio.sleep(1.5)
    told = [e for e in await buyer.messages(dm_id) if "🔔" in e.get("content", {}).get(
        "body", "")]
    assert len(told) == 1
    assert f"{slug} lamp — set at 40.00 — already told" in await chat.say("alerts")
    assert await chat.say(f"alerts cancel {slug} lamp") == f"Alert on lamp of {slug} cancelled."
    assert (await chat.say("alerts")).startswith("You have no price-drop alerts.")


async def test_a_campaign_drafted_and_sent_by_chat_reaches_the_channel(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, _key = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    follower = await new_user(network, http, "follower")
    channel = await follower.join(f"#shop_{slug}:localhost")
    chat = await Chat.direct(network, owner)

    followed = await Chat.direct(network, follower)
    follow = await followed.say(f"follow {slug}")
    assert follow.startswith(f"To follow Shop {slug}, join its channel #shop_{slug}:localhost")
    assert f"https://matrix.to/#/{quote('#')}shop_{slug}%3Alocalhost" in follow

    drafted = await chat.say("campaign draft text Open on Sunday --text Our first post by "
                             "chat: we open 10-14.")
    assert drafted.startswith("Draft ") and f"“Open on Sunday” — draft in {slug}." in drafted
    campaign_id = int(drafted.split()[1])

    send_id = await owner.send_text(chat.room_id, f"campaign send {campaign_id}")
    question = await owner.wait_for_message(chat.room_id, from_bot(chat, replies_to(send_id)))
    assert "React ✅ to send it now or ❌ to keep it as it is — or type yes or no." in \
        question["content"]["body"]
    seeded = await owner.wait_for_message(chat.room_id, from_bot(chat, lambda e: e["type"]
                                          == "m.reaction" and e["content"]["m.relates_to"][
                                              "key"] == "❌"))
    assert seeded["content"]["m.relates_to"]["event_id"] == question["event_id"]
    await owner.send_text(chat.room_id, "yes")
    done = await owner.wait_for_message(chat.room_id, from_bot(chat, lambda e: e[
        "content"].get("body", "").startswith(f"Campaign {campaign_id} of {slug} is on its "
                                              "way")))
    assert replies_to(send_id)(done)

    post = await follower.wait_for_message(channel, lambda e: e["sender"] == shop and
                                           "Our first post by chat" in e["content"].get(
                                               "body", ""))
    assert post["content"]["org.mercato.post"]["campaign"] == campaign_id

    # A second post, confirmed with the ✅ button instead of typing.
    second = await chat.say("campaign draft text Late news --text Second post by button.")
    second_id = int(second.split()[1])
    ask_id = await owner.send_text(chat.room_id, f"campaign send {second_id}")
    question = await owner.wait_for_message(chat.room_id, from_bot(chat, replies_to(ask_id)))
    await owner.send(chat.room_id, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": question["event_id"], "key": "✅"}},
        event_type="m.reaction")
    await follower.wait_for_message(channel, lambda e: e["sender"] == shop and
                                    "Second post by button" in e["content"].get("body", ""))
    listed = await chat.say("campaign list")
    assert f"{second_id} — text — “Late news” —" in listed
    stats = await chat.ask("stats")
    assert stats["body"].startswith(f"Stats of {slug}: 1 followers.")
    assert "<table>" in stats["formatted_body"]


async def test_a_coupon_is_claimed_by_command_and_redeemed_once(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, _key = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    buyer = await new_user(network, http, "buyer")
    channel = await buyer.join(f"#shop_{slug}:localhost")
    merchant_chat = await Chat.direct(network, owner)

    drafted = await merchant_chat.say("coupon create 5 EUR off --stock-codes 3 --expires "
                                      "2099-12-31T23:59Z --text For our followers")
    campaign_id = int(drafted.split()[1])
    coupon_id = int(drafted.split("claim it as coupon ")[1].split()[0])
    sent = await merchant_chat.say(f"campaign send {campaign_id} --yes")
    assert sent.startswith(f"Campaign {campaign_id} of {slug} is on its way")
    await buyer.wait_for_message(channel, lambda e: e["sender"] == shop and
                                 "For our followers" in e["content"].get("body", ""))

    buyer_chat = await Chat.direct(network, buyer)
    claimed = await buyer_chat.say(f"claim {coupon_id}")
    assert claimed.startswith(f"🎟️ Coupon {coupon_id} “5 EUR off” is yours.")
    dm_id = await wait_for_dm_from(buyer, shop)
    code_message = await buyer.wait_for_message(dm_id, lambda e: "Your code" in e.get(
        "content", {}).get("body", ""))
    code = code_message["content"]["body"].split(": ")[1].split()[0]

    redeemed = await merchant_chat.say(f"redeem {code}")
    assert redeemed.startswith(f"✅ {code} redeemed: “5 EUR off” (coupon {coupon_id}), "
                               f"claimed by {buyer.user_id}.")
    assert (await merchant_chat.say(f"redeem {code}")).startswith(f"{code} was already redeemed")
    status = await merchant_chat.say(f"coupon status {coupon_id}")
    assert status.splitlines()[1].startswith("1 codes claimed, 1 redeemed")
