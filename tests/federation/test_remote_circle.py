"""A friend on another homeserver in a Mercato buyer's Circle: they knock over federation,
the owner approves, they join and read the recommendation and its edit; they cannot post."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import aiohttp

from appservices.commerce.circle import rules
from mercato.matrix.admin import register_user
from mercato_ops.testnet import RunningNetwork
from tests.federation.conftest import RemoteHomeserver, remote_user
from tests.federation.test_remote_buyer import join_with_retry
from tests.integration.client import MatrixClient, MatrixError
from tests.integration.commerce_api import CommerceApi
from tests.integration.shop_helpers import Api


async def test_a_remote_friend_knocks_is_approved_and_sees_the_recommendation(
        mercato_hs: RunningNetwork, remote_hs: RemoteHomeserver, http: aiohttp.ClientSession,
        api: Api) -> None:
    server = mercato_hs.config.server_name
    key = mercato_hs.demo["shop"]["api_key"]
    commerce = CommerceApi(mercato_hs, http)
    status, _ = await api.call("POST", "/shops/demo/products", key, {
        "sku": "circle-far", "title": "Linen towel", "price": "15.00", "currency": "EUR"})
    assert status == 201
    secret = mercato_hs.config.synapse.registration_shared_secret
    await register_user(http, mercato_hs.hs_url, secret, "circleowner", "correct horse")
    owner = await MatrixClient(http, mercato_hs.hs_url).login(
        mercato_hs.config.user_id("circleowner"), "correct horse")
    friend = await remote_user(remote_hs, http, "farfriend")
    view = await commerce.post("/me/circle", commerce.acting_as(owner.user_id))
    assert view.status == 200, view
    room_id = view.body["room_id"]
    await owner.join(room_id)

    # The remote friend asks to join over federation; the owner lets them in.
    for _ in range(20):
        try:
            await friend.request("POST", f"/_matrix/client/v3/knock/{quote(room_id)}",
                                 {"reason": "hi"}, params={"server_name": server})
            break
        except MatrixError:
            await asyncio.sleep(0.5)
    for _ in range(60):
        circle = await commerce.get("/me/circle", commerce.acting_as(owner.user_id))
        if friend.user_id in circle.body["knocking"]:
            break
        await asyncio.sleep(0.5)
    assert friend.user_id in circle.body["knocking"], circle.body
    approved = await commerce.post("/me/circle/friends", commerce.acting_as(owner.user_id),
                                   {"user_id": friend.user_id})
    assert approved.status == 200, approved
    bot = mercato_hs.config.user_id(mercato_hs.config.commerce.bot_localpart)
    await friend.wait_for_invite(bot, timeout=60)
    await join_with_retry(friend, room_id, server)

    made = await commerce.post("/me/circle/recommendations", commerce.acting_as(owner.user_id),
                               {"shop": "demo", "sku": "circle-far", "note": "Soft"})
    assert made.status == 201, made
    rec = await friend.wait_for_message(
        room_id, lambda e: e["content"].get(rules.BY_KEY) == owner.user_id, timeout=60)
    assert rec["content"]["org.mercato.product"]["price"] == "15.00"
    status, _ = await api.call("PATCH", "/shops/demo/products/circle-far", key,
                               {"price": "12.00"})
    assert status == 200
    edit = await friend.wait_for_message(
        room_id, lambda e: e["content"].get("m.relates_to", {}).get("event_id")
        == rec["event_id"], timeout=60)
    assert edit["content"]["m.new_content"]["org.mercato.product"]["price"] == "12.00"
    try:
        await friend.send_text(room_id, "spam")
        raise AssertionError("a remote friend posted in someone else's circle room")
    except MatrixError as refused:
        assert refused.status == 403
