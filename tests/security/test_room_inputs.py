"""Rooms where the API takes one (card shares, reports): resolved on input, or refused by name.

An alias is looked up in the homeserver's room directory with every character escaped,
so `#a/b?c:server` is one alias no room has, not another request; whatever is refused
leaves no row behind.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.shop_helpers import Api, new_user, open_shop

UNKNOWN = "MERCATO_UNKNOWN_ALIAS"
INVALID = "MERCATO_INVALID"
SHARE_ROOM = "room_id: must be a room ID (!…) or alias (#…) the shop is in"
REPORT_ROOM = "room_id: must be the room ID (!…) or alias (#…) of a shop's channel"


def _unknown(alias: str) -> tuple[Any, int, str, str]:
    return alias, 400, UNKNOWN, f"room_id: no room has the alias {alias}"


BAD_ROOMS: list[tuple[Any, int, str, str]] = [
    _unknown("#nope:localhost"),
    _unknown("#no-server-part"),
    _unknown("#a/b?c#d:localhost"),
    _unknown("#../../../_synapse/admin:localhost"),
    _unknown("#with space:localhost"),
    ("nowhere", 400, INVALID, SHARE_ROOM),
    ("", 400, INVALID, SHARE_ROOM),
    (7, 400, INVALID, SHARE_ROOM),
    (["#shop_demo:localhost"], 400, INVALID, SHARE_ROOM),
    (None, 400, INVALID, SHARE_ROOM),
]


async def test_share_refuses_a_room_it_cannot_resolve_and_posts_nothing(
        open_network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(open_network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    status, product = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "mug-1", "title": "Mug", "price": "24.00", "currency": "EUR"})
    assert status == 201, product
    answers = []
    for room, *_ in BAD_ROOMS:
        status, body = await api.call("POST", f"/shops/{slug}/products/mug-1/share", key,
                                      {"room_id": room})
        answers.append((room, status, body["errcode"], body["error"]))
    assert answers == [tuple(case) for case in BAD_ROOMS]
    assert open_network.rows("commerce", "SELECT COUNT(*) FROM card WHERE merchant_slug=?",
                             slug) == [(0,)]


async def test_a_report_names_its_channel_by_alias_or_is_refused(
        open_network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(open_network, http, "owner")
    slug, _ = await open_shop(api, owner.user_id)
    follower = await new_user(open_network, http, "follower")
    alias = f"#shop_{slug}:localhost"
    room_id = await follower.join(alias)
    headers = {"Authorization": f"Bearer {open_network.config.commerce.service_token}",
               "X-Mercato-Acting-User": follower.user_id}

    async def report(room: Any) -> tuple[int, dict[str, Any]]:
        async with http.post(f"{api.base}/reports", headers=headers, json={
                "room_id": room, "event_id": "$post", "reason": "spam"}) as resp:
            return resp.status, await resp.json()

    def reports() -> list[tuple[Any, ...]]:
        return open_network.rows("commerce", "SELECT room_id FROM report WHERE"
                                 " merchant_slug=?", slug)

    for room in ("#nope:localhost", "#a/b?c:localhost"):
        assert await report(room) == (400, {"errcode": UNKNOWN,
                                            "error": f"room_id: no room has the alias {room}"})
    status, refused = await report(7)
    assert (status, refused["error"]) == (400, REPORT_ROOM)
    room_of_no_shop = (await follower.request("POST", "/_matrix/client/v3/createRoom", {
        "room_alias_name": f"not-a-shop-{slug}"}))["room_id"]
    status, refused = await report(f"#not-a-shop-{slug}:localhost")  # a room, no channel
    assert (status, refused["error"]) == (400, REPORT_ROOM)
    assert room_of_no_shop.startswith("!")
    assert reports() == []

    status, answer = await report(alias)
    assert (status, answer["shop"]) == (201, slug)
    assert reports() == [(room_id,)]
