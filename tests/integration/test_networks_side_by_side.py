"""Two test networks with the same server name run on one machine at once."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from mercato_ops.testnet import RunningNetwork, network_running, write_test_config
from tests.integration.shop_helpers import Api, channel_listed, new_user, open_shop


async def test_two_networks_named_alike_run_side_by_side(
        network: RunningNetwork, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    """Every test network is called localhost. On the scale profile Synapse names its
    Redis channels after the server name, so each network has a Redis of its own:
    neither may see the other's replication traffic (docs/scale.md)."""
    (tmp_path / "second").mkdir()
    with network_running(write_test_config(tmp_path / "second")) as second:
        if second.profile == "scale":
            assert second.config.scale.redis_port != network.config.scale.redis_port
        for each in (second, network):
            api = Api(each, http)
            buyer = await new_user(each, http, "neighbour")
            slug, key = await open_shop(api, each.demo["merchant"]["user_id"])
            alias = f"#shop_{slug}:localhost"
            assert (await channel_listed(buyer, alias))["name"] == f"Shop {slug}"
            room_id = await buyer.join(alias)
            status, campaign = await api.call("POST", f"/shops/{slug}/campaigns", key, {
                "kind": "text", "fields": {"title": "Next door", "text": f"Only on {slug}"}})
            assert status == 201, campaign
            assert (await api.call("POST", f"/shops/{slug}/campaigns/{campaign['id']}/schedule",
                                   key))[0] == 200
            await buyer.wait_for_message(room_id, lambda e, slug=slug: f"Only on {slug}" in e.get(
                "content", {}).get("body", ""), timeout=60)
