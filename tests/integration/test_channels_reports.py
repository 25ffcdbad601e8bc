"""More channels per shop, targeted campaigns, and follower reports reaching the operator."""

from __future__ import annotations

import subprocess
import sys

from mercato_ops.testnet import RunningNetwork
from tests.integration.shop_helpers import Api, new_user, open_shop


def posts(events: list[dict], campaign_id: int) -> list[dict]:
    return [e for e in events if e.get("content", {}).get("org.mercato.post", {}).get(
        "campaign") == campaign_id]


async def test_second_channel_gets_only_its_campaigns(network: RunningNetwork, http,
                                                      api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    status, refused = await api.call("POST", f"/shops/{slug}/channels", key,
                                     {"suffix": "No Spaces", "name": "North"})
    assert status == 400 and "suffix" in refused["error"]
    status, north = await api.call("POST", f"/shops/{slug}/channels", key,
                                   {"suffix": "north", "name": f"Shop {slug} — North"})
    assert status == 201, north
    assert north["alias"] == f"#shop_{slug}-north:localhost"
    status, again = await api.call("POST", f"/shops/{slug}/channels", key,
                                   {"suffix": "north", "name": "Again"})
    assert status == 409 and again["errcode"] == "MERCATO_CHANNEL_EXISTS"

    follower = await new_user(network, http, "north")
    north_room = await follower.join(north["alias"])
    main_room = await follower.join(f"#shop_{slug}:localhost")
    name = (await follower.state(north_room, "m.room.name"))["name"]
    assert name == f"Shop {slug} — North"
    status, listing = await api.call("GET", f"/shops/{slug}/channels", key)
    assert [c["primary"] for c in listing["channels"]] == [True, False]

    status, campaign = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "text", "fields": {"title": "North only", "text": "Snow boots up north"},
        "channels": [north["alias"]]})
    assert status == 201, campaign
    assert (await api.call("POST", f"/shops/{slug}/campaigns/{campaign['id']}/schedule",
                           key))[0] == 200
    await follower.wait_for_message(north_room, lambda e: bool(posts([e], campaign["id"])))
    assert posts(await follower.messages(main_room), campaign["id"]) == []


async def test_follower_report_reaches_the_operator(network: RunningNetwork, http,
                                                    api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    follower = await new_user(network, http, "reporter")
    room_id = await follower.join(f"#shop_{slug}:localhost")
    welcome = await follower.wait_for_message(room_id, lambda e: "Welcome to" in e.get(
        "content", {}).get("body", ""))
    async with http.post(f"{api.base}/reports", json={
            "room_id": room_id, "event_id": welcome["event_id"], "reason": "Looks like a scam"},
            headers={"Authorization": f"Bearer {network.config.commerce.service_token}",
                     "X-Mercato-Acting-User": follower.user_id}) as resp:
        assert resp.status == 201, await resp.text()
    async with http.post(f"{api.base}/reports", json={
            "room_id": "!not-a-channel:localhost", "event_id": "$x", "reason": "x"},
            headers={"Authorization": f"Bearer {network.config.commerce.service_token}",
                     "X-Mercato-Acting-User": follower.user_id}) as resp:
        assert resp.status == 400
    status, listed = await api.call("GET", "/reports", key)
    assert status == 403, "a shop must not read reports"
    result = subprocess.run([sys.executable, "-m", "mercato_ops", "--config",
                             str(network.config_path), "admin", "reports"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Looks like a scam" in result.stdout and slug in result.stdout
