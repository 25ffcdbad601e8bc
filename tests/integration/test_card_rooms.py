"""Cards shared by room alias, and card edits the homeserver refuses, read back by a client."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import quote

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop


def _edit_of(card_id: str, price: str) -> Any:
    def matches(event: dict[str, Any]) -> bool:
        content = event.get("content", {})
        return content.get("m.relates_to", {}).get("rel_type") == "m.replace" and \
            content["m.relates_to"].get("event_id") == card_id and \
            content.get("m.new_content", {}).get("org.mercato.product", {}).get("price") == price
    return matches


async def _shop_with_product(network: RunningNetwork, http: aiohttp.ClientSession,
                             api: Api) -> tuple[str, str]:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    status, product = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "mug-1", "title": "Stoneware mug", "price": "24.00", "currency": "EUR"})
    assert status == 201, product
    return slug, key


async def _card_stats(api: Api, slug: str, key: str) -> dict[str, int]:
    status, stats = await api.call("GET", f"/shops/{slug}/stats", key)
    assert status == 200, stats
    return stats["cards"]


async def test_a_card_shared_by_alias_answers_the_room_id_and_is_edited(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    slug, key = await _shop_with_product(network, http, api)
    follower = await new_user(network, http, "follower")
    alias = f"#shop_{slug}:localhost"
    room_id = await follower.join(alias)

    status, shared = await api.call("POST", f"/shops/{slug}/products/mug-1/share", key,
                                    {"room_id": alias})
    assert status == 200, shared
    assert shared["room_id"] == room_id
    await follower.wait_for_message(room_id, lambda e: e["event_id"] == shared["event_id"])

    status, _ = await api.call("PATCH", f"/shops/{slug}/products/mug-1", key,
                               {"price": "19.50"})
    assert status == 200
    edit = await follower.wait_for_message(room_id, _edit_of(shared["event_id"], "19.50"))
    assert "19.50 EUR" in edit["content"]["m.new_content"]["body"]
    assert await _card_stats(api, slug, key) == {
        "shared": 1, "edits_sent": 1, "edits_waiting": 0, "edits_given_up": 0,
        "edit_failures": 0}

    unknown = f"#nope{uuid.uuid4().hex[:8]}:localhost"
    status, refused = await api.call("POST", f"/shops/{slug}/products/mug-1/share", key,
                                     {"room_id": unknown})
    assert (status, refused["errcode"]) == (400, "MERCATO_UNKNOWN_ALIAS")
    assert refused["error"] == f"room_id: no room has the alias {unknown}"
    assert (await _card_stats(api, slug, key))["shared"] == 1  # nothing recorded


async def _set_events_default(client: MatrixClient, room_id: str, level: int) -> None:
    levels = await client.state(room_id, "m.room.power_levels")
    await client.request(
        "PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.power_levels",
        {**levels, "events_default": level})


async def _metric(http: aiohttp.ClientSession, network: RunningNetwork, sample: str) -> float:
    async with http.get(f"{network.commerce_url}/metrics") as resp:
        text = await resp.text()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(sample)]
    return values[0] if values else 0.0


async def test_a_refused_card_edit_is_counted_and_arrives_once_the_shop_may_send(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    slug, key = await _shop_with_product(network, http, api)
    shop = f"@shop_{slug}:localhost"
    host = await new_user(network, http, "host")
    room_id = (await host.request("POST", "/_matrix/client/v3/createRoom",
                                  {"preset": "public_chat", "name": "Group buy"}))["room_id"]
    # The shop joins the group (the appservice acts for its users).
    async with http.post(f"{network.hs_url}/_matrix/client/v3/join/{quote(room_id)}",
                         params={"user_id": shop}, json={}, headers={
                             "Authorization": f"Bearer {network.config.commerce.as_token}"}
                         ) as resp:
        assert resp.status == 200, await resp.text()
    status, shared = await api.call("POST", f"/shops/{slug}/products/mug-1/share", key,
                                    {"room_id": room_id})
    assert status == 200, shared
    await host.wait_for_message(room_id, lambda e: e["event_id"] == shared["event_id"])

    await _set_events_default(host, room_id, 50)  # only moderators may post now
    retrying = 'mercato_card_edits_total{outcome="retrying"}'
    failed_before = await _metric(http, network, retrying)
    status, _ = await api.call("PATCH", f"/shops/{slug}/products/mug-1", key,
                               {"price": "19.50"})
    assert status == 200  # the price changed; the card follows when it can
    for _ in range(100):  # the outbox's first try is refused
        stats = await _card_stats(api, slug, key)
        if stats["edit_failures"]:
            break
        await asyncio.sleep(0.1)
    assert (stats["edits_waiting"], stats["edits_sent"]) == (1, 0)
    assert stats["edit_failures"] >= 1
    assert await _metric(http, network, retrying) >= failed_before + 1

    await _set_events_default(host, room_id, 0)
    await host.wait_for_message(room_id, _edit_of(shared["event_id"], "19.50"), timeout=40)
    for _ in range(50):
        stats = await _card_stats(api, slug, key)
        if stats["edits_sent"]:
            break
        await asyncio.sleep(0.2)
    assert (stats["edits_waiting"], stats["edits_sent"]) == (0, 1)
    edits = [e for e in await host.messages(room_id)
             if _edit_of(shared["event_id"], "19.50")(e)]
    assert len(edits) == 1


async def test_a_share_into_a_room_the_shop_is_not_in_is_refused_by_name(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    slug, key = await _shop_with_product(network, http, api)
    stranger = await new_user(network, http, "stranger")
    created = await stranger.request("POST", "/_matrix/client/v3/createRoom",
                                     {"preset": "private_chat"})
    room_id = created["room_id"]

    status, refused = await api.call("POST", f"/shops/{slug}/products/mug-1/share", key,
                                     {"room_id": room_id})
    assert (status, refused["errcode"]) == (403, "MERCATO_NOT_IN_ROOM"), refused
    assert refused["error"] == (
        f"The shop is not in {room_id} and cannot join it: invite @shop_{slug}:localhost "
        "to the room first.")
    assert (await _card_stats(api, slug, key))["shared"] == 0  # nothing recorded
