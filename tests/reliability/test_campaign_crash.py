"""The commerce appservice dies mid-campaign; after the restart every post is there once.

The crash is placed at the worst moment: right after Synapse accepted a post and
before the appservice recorded it. `mercato up` then stops the whole network
(Synapse included, so its in-memory transaction-ID cache is gone too) and a
second `mercato up` must finish the campaigns without losing or doubling a post.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import aiohttp

from mercato.matrix.admin import register_user
from mercato_ops.testnet import start_network, write_test_config
from tests.integration.client import MatrixClient

SHOPS = 3
CAMPAIGNS_PER_SHOP = 3


async def _call(http, base, token, method, path, body=None):
    async with http.request(method, base + path, json=body,
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_crash_between_send_and_record_neither_loses_nor_doubles(tmp_path) -> None:
    config_path = write_test_config(tmp_path)
    first = start_network(config_path, log_name="first.out",
                          env={"MERCATO_FAULTS": "outbox.after_send=4"})
    config = first.config
    base = f"{first.commerce_url}/api/v1"
    operator = config.commerce.operator_token
    slugs = [f"crash{uuid.uuid4().hex[:8]}" for _ in range(SHOPS)]
    async with aiohttp.ClientSession() as http:
        await register_user(http, first.hs_url, config.synapse.registration_shared_secret,
                            "follower", "follower password")
        follower = await MatrixClient(http, first.hs_url).login("@follower:localhost",
                                                               "follower password")
        rooms = {}
        for slug in slugs:
            status, body = await _call(http, base, operator, "POST", "/shops", {
                "slug": slug, "name": f"Shop {slug}", "owner": "@merchant:localhost"})
            assert status == 201, body
            assert (await _call(http, base, operator, "POST", f"/shops/{slug}/approve"))[0] == 200
            assert (await _call(http, base, operator, "PUT", f"/shops/{slug}/quota",
                                {"posts_per_day": 10}))[0] == 200
            rooms[slug] = await follower.join(f"#shop_{slug}:localhost")
        campaign_ids = {}
        for n in range(CAMPAIGNS_PER_SHOP):
            for slug in slugs:
                status, campaign = await _call(http, base, operator, "POST",
                                               f"/shops/{slug}/campaigns", {
                    "kind": "text", "fields": {"title": f"Post {n}", "text": f"{slug} #{n}"}})
                assert status == 201, campaign
                campaign_ids[campaign["id"]] = slug
        for campaign_id, slug in campaign_ids.items():
            status, body = await _call(http, base, operator, "POST",
                                       f"/shops/{slug}/campaigns/{campaign_id}/schedule")
            if status != 200:
                break  # the crash may already have happened: the rest waits as drafts

    first.process.wait(120)
    assert first.process.returncode == 1, "the network should stop when commerce dies"
    assert "outbox.sent" in (tmp_path / "data" / "logs" / "commerce.out").read_text()

    second = start_network(config_path, log_name="second.out")
    try:
        async with aiohttp.ClientSession() as http:
            # Campaigns the crash kept from being scheduled are scheduled now.
            for campaign_id, slug in campaign_ids.items():
                status, body = await _call(http, base, operator, "GET",
                                           f"/shops/{slug}/campaigns/{campaign_id}")
                if body["state"] == "draft":
                    assert (await _call(http, base, operator, "POST",
                                        f"/shops/{slug}/campaigns/{campaign_id}/schedule"))[0] \
                        == 200
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                states = [(await _call(http, base, operator, "GET",
                                       f"/shops/{slug}/campaigns/{cid}"))[1]["state"]
                          for cid, slug in campaign_ids.items()]
                if all(state == "sent" for state in states):
                    break
                await asyncio.sleep(0.5)
            assert all(state == "sent" for state in states), states

            follower = await MatrixClient(http, second.hs_url).login("@follower:localhost",
                                                                    "follower password")
            for slug, room_id in rooms.items():
                posts = [e for e in await follower.messages(room_id, limit=200)
                         if e["type"] == "m.room.message"
                         and "org.mercato.post" in e["content"]]
                per_campaign = Counter(e["content"]["org.mercato.post"]["campaign"]
                                       for e in posts)
                expected = {cid for cid, s in campaign_ids.items() if s == slug}
                assert set(per_campaign) == expected, (slug, per_campaign)
                assert all(count == 1 for count in per_campaign.values()), (slug, per_campaign)
        assert "send.adopted" in (tmp_path / "data" / "logs" / "commerce.out").read_text(), \
            "the post sent before the crash should have been found, not sent again"
    finally:
        assert second.stop() == 0
