"""A second `make run` reuses the data: same accounts, same channel, no second welcome,
and the demo catalog's cards, coupon and pinned storefront link are not posted again."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import aiohttp

from mercato_ops.testnet import start_network, write_test_config
from tests.integration.client import MatrixClient


async def _channel_and_welcomes(hs_url: str, demo: dict) -> tuple[str, int]:
    """The channel and how often each of the shop's posts is in it: the welcome, each
    demo product's card and the coupon post must be there exactly once."""
    async with aiohttp.ClientSession() as http:
        buyer = await MatrixClient(http, hs_url).login(demo["buyer"]["user_id"],
                                                       demo["buyer"]["password"])
        room_id = await buyer.join(demo["channel_alias"])
        await buyer.wait_for_message(room_id, lambda e: e.get("content", {}).get(
            "org.mercato.post", {}).get("campaign") == demo["coupon_campaign"]["id"])
        posts = [e["content"] for e in await buyer.messages(room_id)
                 if e["type"] == "m.room.message" and e["sender"] == demo["shop"]["user_id"]]
        cards = sorted(c["org.mercato.product"]["sku"] for c in posts
                       if "org.mercato.product" in c)
        assert cards == sorted(p["sku"] for p in demo["products"]), cards
        coupons = [c for c in posts if "org.mercato.post" in c]
        assert len(coupons) == 1, coupons
        storefront = [c for c in posts if "org.mercato.menu" in c]  # the pinned link
        assert len(storefront) == 1, storefront
        return room_id, len(posts) - len(cards) - len(coupons) - len(storefront)


async def test_restart_reuses_everything(tmp_path) -> None:
    config_path = write_test_config(tmp_path)
    first = start_network(config_path, log_name="first.out")
    try:
        demo_before = first.demo
        room_before, welcomes = await _channel_and_welcomes(first.hs_url, demo_before)
        assert welcomes == 1
    finally:
        assert first.stop() == 0, first.output()[-3000:]
    stopped = re.findall(r'"component": "(\w+)", "code": (-?\d+), "event": "network.stopped"',
                         first.output())
    names = [name for name, _ in stopped]
    # Newest first: Mercato's components, then Synapse (with its workers in the scale profile).
    assert names[:3] == ["shopbot", "contacts", "commerce"] and names[-1] == "synapse", names
    assert all(code == "0" for _, code in stopped), stopped

    second = start_network(config_path, log_name="second.out")
    try:
        assert second.demo == demo_before, "passwords, API key and aliases must be kept"
        room_after, welcomes = await _channel_and_welcomes(second.hs_url, second.demo)
        assert room_after == room_before
        assert welcomes == 1, "the welcome post was sent again on restart"
        assert "channel.created" not in second.output()
        # The operator's view of the same data, through the CLI.
        listing = subprocess.run(
            [sys.executable, "-m", "mercato_ops", "--config", str(config_path),
             "admin", "merchants", "list"], capture_output=True, text=True, timeout=60)
        assert listing.returncode == 0, listing.stderr
        assert "demo" in listing.stdout and "@shop_demo:localhost" in listing.stdout
    finally:
        stopped_code = second.stop()
        second.drop_databases()  # the scale profile's, kept across the restart until now
        assert stopped_code == 0
    assert json.loads((tmp_path / "data" / "demo.json").read_text())["shop"]["slug"] == "demo"
    down = subprocess.run(
        [sys.executable, "-m", "mercato_ops", "--config", str(config_path),
         "admin", "merchants", "list"], capture_output=True, text=True, timeout=60)
    assert down.returncode != 0 and "start the network with `make run`" in down.stderr


def test_config_errors_name_the_key(tmp_path) -> None:
    config = tmp_path / "mercato.yaml"
    config.write_text("synapse:\n  port: 99999\n")
    result = subprocess.run([sys.executable, "-m", "mercato_ops", "--config", str(config),
                             "config", "check"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "synapse.port" in result.stderr and "less than or equal to 65535" in result.stderr
    assert config.read_text() == "synapse:\n  port: 99999\n", "a bad file must not be rewritten"
