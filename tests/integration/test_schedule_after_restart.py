"""A scheduled post goes out on time even when the network was down in between."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp

from mercato_ops.testnet import start_network, write_test_config
from tests.integration.client import MatrixClient


async def test_scheduled_campaign_survives_a_restart(tmp_path) -> None:
    config_path = write_test_config(tmp_path)
    first = start_network(config_path, log_name="first.out")
    demo = first.demo
    key = demo["shop"]["api_key"]
    base = f"{first.commerce_url}/api/v1"
    headers = {"Authorization": f"Bearer {key}"}
    at = datetime.now(UTC) + timedelta(seconds=25)
    try:
        async with aiohttp.ClientSession() as http:
            buyer = await MatrixClient(http, first.hs_url).login(
                demo["buyer"]["user_id"], demo["buyer"]["password"])
            room_id = await buyer.join(demo["channel_alias"])
            async with http.post(f"{base}/shops/demo/campaigns", headers=headers, json={
                    "kind": "text", "fields": {"title": "Later", "text": "Scheduled before"
                                               " the restart"}}) as resp:
                campaign = await resp.json()
            async with http.post(f"{base}/shops/demo/campaigns/{campaign['id']}/schedule",
                                 headers=headers, json={"at": at.isoformat()}) as resp:
                assert resp.status == 200, await resp.text()
    finally:
        assert first.stop() == 0
    await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds() - 15))

    second = start_network(config_path, log_name="second.out")
    try:
        async with aiohttp.ClientSession() as http:
            buyer = await MatrixClient(http, second.hs_url).login(
                demo["buyer"]["user_id"], demo["buyer"]["password"])
            post = await buyer.wait_for_message(room_id, lambda e: e.get("content", {}).get(
                "org.mercato.post", {}).get("campaign") == campaign["id"], timeout=90)
            assert post["origin_server_ts"] >= int(at.timestamp() * 1000) - 1500, "too early"
            found = [e for e in await buyer.messages(room_id) if e.get("content", {}).get(
                "org.mercato.post", {}).get("campaign") == campaign["id"]]
            assert len(found) == 1
    finally:
        stopped_code = second.stop()
        second.drop_databases()  # the scale profile's, kept across the restart until now
        assert stopped_code == 0
