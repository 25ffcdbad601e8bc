"""The shop's direct messages reach a buyer who left the DM earlier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop


async def _coupon_post(api: Api, slug: str, key: str, buyer: MatrixClient, room_id: str,
                       title: str) -> dict:
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    status, campaign = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "coupon", "fields": {"title": title}, "coupon": {"stock": 5,
                                                                "expires_at": expires}})
    assert status == 201, campaign
    assert (await api.call("POST", f"/shops/{slug}/campaigns/{campaign['id']}/schedule",
                           key))[0] == 200
    return await buyer.wait_for_message(room_id, lambda e: e.get("content", {}).get(
        "org.mercato.post", {}).get("campaign") == campaign["id"])


async def test_code_reaches_a_buyer_who_left_the_dm(network: RunningNetwork, http,
                                                    api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    buyer = await new_user(network, http, "leaver")
    room_id = await buyer.join(f"#shop_{slug}:localhost")

    first = await _coupon_post(api, slug, key, buyer, room_id, "First drop")
    await buyer.send(room_id, {"m.relates_to": {"rel_type": "m.annotation",
                                                "event_id": first["event_id"], "key": "🎟️"}},
                     event_type="m.reaction")
    dm_id = await buyer.wait_for_invite(shop)
    await buyer.join(dm_id)
    await buyer.wait_for_message(dm_id, lambda e: "First drop" in e.get("content", {}).get(
        "body", ""))
    await buyer.leave(dm_id)

    second = await _coupon_post(api, slug, key, buyer, room_id, "Second drop")
    await buyer.send(room_id, {"m.relates_to": {"rel_type": "m.annotation",
                                                "event_id": second["event_id"], "key": "🎟️"}},
                     event_type="m.reaction")
    again = await buyer.wait_for_invite(shop)
    assert again == dm_id, "the shop should invite the buyer back into the same DM"
    await buyer.join(dm_id)
    await buyer.wait_for_message(dm_id, lambda e: "Second drop" in e.get("content", {}).get(
        "body", ""))
