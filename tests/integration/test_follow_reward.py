"""Follow from paper: the channel's QR code, the poster's counted link, and the follow
reward — a coupon code sent by DM once to each account's first follow, while it lasts."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import aiohttp
import segno
import zxingcpp
from PIL import Image

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.commerce_api import commerce_rows
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.integration.test_shop_menu import inbox_drained, is_menu, outbox_drained

GIFT = "Thank you for following"


def _decoded(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1 and found[0].format == zxingcpp.BarcodeFormat.QRCode, found
    return found[0].text


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, bytes]:
    async with http.get(url, allow_redirects=False) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def _first_follow(network: RunningNetwork, slug: str, user_id: str,
                        timeout: float = 30.0) -> tuple[str, str, str | None]:
    """(source, reward, code) once commerce has recorded the account's first follow."""
    deadline = time.monotonic() + timeout
    while not (found := commerce_rows(
            network, "SELECT source, reward, code FROM new_follower WHERE merchant_slug=?"
            " AND user_id=?", slug, user_id)):
        assert time.monotonic() < deadline, f"{user_id}'s follow of {slug} was not recorded"
        await asyncio.sleep(0.2)
    return found[0]


async def _gift_dm(buyer: MatrixClient, shop: str) -> tuple[str, dict]:
    dm = await buyer.wait_for_invite(shop)
    await buyer.join(dm)
    gift = await buyer.wait_for_message(
        dm, lambda e: e["sender"] == shop and GIFT in e.get("content", {}).get("body", ""))
    return dm, gift


async def test_qr_code_holds_the_channel_link(network: RunningNetwork,
                                              http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, _ = await open_shop(api, owner.user_id)
    base = network.commerce_url
    status, kind, png = await _get(http, f"{base}/s/{slug}/qr")
    assert status == 200 and kind == "image/png"
    assert _decoded(png) == f"https://matrix.to/#/%23shop_{slug}:localhost"

    status, kind, svg = await _get(http, f"{base}/s/{slug}/qr?format=svg")
    assert status == 200 and kind.startswith("image/svg+xml")
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # The SVG draws the same code segno makes of the link.
    expected = io.BytesIO()
    segno.make(f"https://matrix.to/#/%23shop_{slug}:localhost", error="m", micro=False).save(
        expected, kind="svg", scale=4, border=4, svgclass="qr", light="#fff",
        title="QR code")
    assert svg == expected.getvalue()

    # The poster's code holds the counted link; unknown shops and formats are refused.
    _, _, poster_png = await _get(http, f"{base}/s/{slug}/qr?from=poster")
    site = network.config.commerce.site_url.rstrip("/")
    assert _decoded(poster_png) == f"{site}/s/{slug}/follow?from=poster"
    assert (await _get(http, f"{base}/s/{slug}/qr?format=gif"))[0] == 400
    assert (await _get(http, f"{base}/s/nosuchshop/qr"))[0] == 404

    # A scan is counted and sent on to the channel; a link preview is not a scan.
    status, _, _ = await _get(http, f"{base}/s/{slug}/follow?from=poster")
    async with http.get(f"{base}/s/{slug}/follow?from=poster", allow_redirects=False,
                        headers={"User-Agent": "Synapse (bot; +https://github.com/x)"}) as r:
        assert r.status == 303
    async with http.get(f"{base}/s/{slug}/follow?from=poster", allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == f"https://matrix.to/#/%23shop_{slug}:localhost"
    status, stats = await api.call("GET", f"/shops/{slug}/stats", api.operator)
    assert status == 200 and stats["poster_scans"] == 2, stats


async def test_follow_reward_once_per_account_while_stock_lasts(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    alias = f"#shop_{slug}:localhost"
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    status, refused = await api.call("PUT", f"/shops/{slug}/follow-reward", key, {
        "title": "Welcome gift", "stock": 2, "expires_at": expires})
    assert status == 400 and "percent_off" in refused["error"], refused
    status, reward = await api.call("PUT", f"/shops/{slug}/follow-reward", key, {
        "title": "10% off your first order", "percent_off": 10, "stock": 2,
        "expires_at": expires})
    assert status == 200, reward
    assert reward["follow_reward"]["left"] == 2

    # A first follow: the code arrives by DM from the shop, with the DM's menu.
    first = await new_user(network, http, "first")
    channel = await first.join(alias)
    dm, gift = await _gift_dm(first, shop)
    code = (await _first_follow(network, slug, first.user_id))[2]
    assert code and code in gift["content"]["body"] and "10% off" in gift["content"]["body"]
    await first.wait_for_message(dm, is_menu())

    # Leaving and following again earns nothing more.
    await first.leave(channel)
    await first.join(alias)
    await inbox_drained(network, channel)
    await outbox_drained(network, dm)
    gifts = [e for e in await first.messages(dm) if GIFT in e.get("content", {}).get("body", "")]
    assert len(gifts) == 1
    assert commerce_rows(network, "SELECT COUNT(*) FROM coupon_code WHERE user_id=?",
                         first.user_id) == [(1,)]

    # The second follower takes the last code; the third is told nothing and counted.
    second = await new_user(network, http, "second")
    await second.join(alias)
    await _gift_dm(second, shop)
    third = await new_user(network, http, "third")
    await third.join(alias)
    assert await _first_follow(network, slug, third.user_id) == ("elsewhere", "out_of_stock",
                                                                 None)
    await inbox_drained(network, channel)
    assert commerce_rows(network, "SELECT COUNT(*) FROM coupon_code WHERE user_id=?",
                         third.user_id) == [(0,)]
    status, stats = await api.call("GET", f"/shops/{slug}/stats", key)
    assert status == 200, stats
    assert stats["follows"] == {"poster": 0, "elsewhere": 3}
    shown = stats["follow_reward"]
    assert (shown["given"], shown["left"], shown["out_of_stock"], shown["missed"]) == \
        (2, 0, True, 1), shown

    # The code is the buyer's to use: `coupons` in their DM lists it.
    await first.send_text(dm, "coupons")
    await first.wait_for_message(dm, lambda e: e["sender"] == shop and code in e.get(
        "content", {}).get("body", "") and "Your coupon codes" in e["content"]["body"])

    # Stopping the reward: nothing more to give, and the API says so.
    status, _ = await api.call("DELETE", f"/shops/{slug}/follow-reward", key)
    assert status == 200
    status, again = await api.call("DELETE", f"/shops/{slug}/follow-reward", key)
    assert status == 404 and again["errcode"] == "MERCATO_NO_FOLLOW_REWARD"
