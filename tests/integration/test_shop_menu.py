"""The shop's menu in every client: one menu message pinned in each buyer's DM with the
shop, edited when the shop changes it, and the storefront pinned and offered as a widget
in the channel. Read back the way a buyer's client reads them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient, MatrixError
from tests.integration.commerce_api import commerce_rows, joined
from tests.integration.shop_helpers import Api, new_user, open_shop

MENU_KEY = "org.mercato.menu"


def is_menu(kind: str = "dm"):
    def matches(event: dict[str, Any]) -> bool:
        content = event.get("content", {})
        return (event.get("type") == "m.room.message"
                and (content.get(MENU_KEY) or {}).get("kind") == kind
                and "m.relates_to" not in content)
    return matches


def edits_of(event_id: str):
    def matches(event: dict[str, Any]) -> bool:
        relation = event.get("content", {}).get("m.relates_to", {})
        return relation.get("rel_type") == "m.replace" and relation.get("event_id") == event_id
    return matches


async def pinned(client: MatrixClient, room_id: str, timeout: float = 30.0) -> list[str]:
    """The room's pinned events once something is pinned, as the client reads the state."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = (await client.state(room_id, "m.room.pinned_events")).get("pinned", [])
        except MatrixError as e:
            if e.status != 404:
                raise
            found = []
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.3)


async def inbox_drained(network: RunningNetwork, room_id: str, timeout: float = 30.0) -> None:
    """Wait until commerce has handled every event of the room it was sent."""
    deadline = time.monotonic() + timeout
    while commerce_rows(network, "SELECT COUNT(*) FROM as_inbox WHERE room_id=?"
                        " AND handled_at IS NULL", room_id)[0][0]:
        assert time.monotonic() < deadline, f"commerce has not handled {room_id}'s events"
        await asyncio.sleep(0.2)


async def outbox_drained(network: RunningNetwork, room_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while commerce_rows(network, "SELECT COUNT(*) FROM outbound_message WHERE room_id=?"
                        " AND state='pending'", room_id)[0][0]:
        assert time.monotonic() < deadline, f"messages to {room_id} are still waiting"
        await asyncio.sleep(0.2)


async def test_menu_pinned_in_the_dm_and_edited_when_the_shop_changes_it(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    buyer = await new_user(network, http, "buyer")
    dm = await buyer.create_dm(shop)
    await buyer.wait_for_message(dm, joined(shop))

    menu = await buyer.wait_for_message(dm, is_menu())
    assert menu["sender"] == shop
    body = menu["content"]["body"]
    storefront = f"{network.config.commerce.site_url.rstrip('/')}/s/{slug}"
    assert storefront in body
    orders = f"{network.config.commerce.site_url.rstrip('/')}/orders"
    assert f"My orders: {orders}" in body and "type coupons here" in body
    assert f'<a href="{orders}"' in menu["content"]["formatted_body"]
    assert "Talk to a person: just write in this chat" in body
    assert f'<a href="{storefront}"' in menu["content"]["formatted_body"]
    # The buyer's client sees it pinned: the shop is an admin of a trusted private chat.
    assert await pinned(buyer, dm) == [menu["event_id"]]

    # Writing again (a replayed event, a second message) sends no second menu.
    await buyer.send_text(dm, "Hello")
    await buyer.send_text(dm, "Are you there?")
    await inbox_drained(network, dm)
    await outbox_drained(network, dm)
    assert [e["event_id"] for e in await buyer.messages(dm) if is_menu()(e)] == \
        [menu["event_id"]]

    # `coupons` is answered by the shop, not relayed.
    await buyer.send_text(dm, "coupons")
    await buyer.wait_for_message(dm, lambda e: e["sender"] == shop and "no coupon codes from"
                                 in e.get("content", {}).get("body", ""))

    # The shop adds a link of its own: a link outside its verified site is refused…
    status, refused = await api.call("PUT", f"/shops/{slug}/menu", key, {
        "links": [{"label": "Elsewhere", "url": "https://evil.example/x"}]})
    assert status == 422, refused
    assert "evil.example" in refused["error"]
    # …one on its site is added, and the menu already sent is edited in place.
    status, changed = await api.call("PUT", f"/shops/{slug}/menu", key, {
        "links": [{"label": "Size guide", "url": f"https://{slug}.example/sizes"}]})
    assert status == 200, changed
    assert changed["links"] == [{"label": "Size guide",
                                 "url": f"https://{slug}.example/sizes"}]
    edit = await buyer.wait_for_message(dm, edits_of(menu["event_id"]))
    new = edit["content"]["m.new_content"]
    assert f"Size guide: https://{slug}.example/sizes" in new["body"]
    assert new[MENU_KEY]["kind"] == "dm"

    # A new name reaches the menu too, by another edit of the same message.
    status, _ = await api.call("PATCH", f"/shops/{slug}", key, {"name": f"Renamed {slug}"})
    assert status == 200
    renamed = await buyer.wait_for_message(dm, lambda e: edits_of(menu["event_id"])(e) and (
        f"Renamed {slug}" in e["content"]["m.new_content"]["body"]))
    assert "Size guide" in renamed["content"]["m.new_content"]["body"]
    # Still one menu message, still the pinned one.
    assert [e["event_id"] for e in await buyer.messages(dm) if is_menu()(e)] == \
        [menu["event_id"]]
    assert await pinned(buyer, dm) == [menu["event_id"]]
    status, view = await api.call("GET", f"/shops/{slug}/menu", key)
    assert status == 200 and view["dms"] == 1 and view["pinned"] == 1, view


async def test_menu_sent_unpinned_where_the_shop_may_not_pin(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, _ = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    buyer = await new_user(network, http, "buyer")
    # A private chat (not a trusted one) leaves the invited shop at power level 0.
    dm = (await buyer.request("POST", "/_matrix/client/v3/createRoom", {
        "invite": [shop], "is_direct": True, "preset": "private_chat"}))["room_id"]
    await buyer.wait_for_message(dm, joined(shop))
    menu = await buyer.wait_for_message(dm, is_menu())
    assert "Storefront" in menu["content"]["body"]
    await outbox_drained(network, dm)
    assert await pinned(buyer, dm, timeout=2) == []
    assert commerce_rows(network, "SELECT pinned FROM pinned_menu WHERE room_id=?", dm) == \
        [("not_allowed",)]


async def test_channel_pins_the_storefront_and_carries_its_widget(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, _ = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    follower = await new_user(network, http, "follower")
    room_id = await follower.join(f"#shop_{slug}:localhost")
    site = network.config.commerce.site_url.rstrip("/")

    link = await follower.wait_for_message(room_id, is_menu("channel"))
    assert link["sender"] == shop and f"{site}/s/{slug}" in link["content"]["body"]
    assert await pinned(follower, room_id) == [link["event_id"]]
    widget = await follower.state(room_id, "im.vector.modular.widgets", "mercato_storefront")
    assert widget["type"] == "m.custom" and widget["id"] == "mercato_storefront"
    assert widget["url"] == f"{site}/s/{slug}?widget=1"
    assert widget["creatorUserId"] == shop
    layout = await follower.state(room_id, "io.element.widgets.layout")
    assert layout["widgets"]["mercato_storefront"]["container"] == "top"
