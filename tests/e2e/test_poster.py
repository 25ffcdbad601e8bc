"""The printable follow card: real Chromium at A6 size, and a signed-in scan of its QR
code counted as a follow from the poster."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import zxingcpp
from PIL import Image
from playwright.async_api import Browser, expect

from mercato_ops.testnet import RunningNetwork
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.integration.test_follow_reward import _first_follow

DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "img" / "poster.png"
A6_CSS_PX = {"width": 397, "height": 559}  # 105 × 148 mm at 96 px to the inch


async def test_poster_prints_on_a6_and_counts_follows_from_it(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession,
        api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    status, _ = await api.call("PATCH", f"/shops/{slug}", key, {"name": "Hillside Tea Room"})
    assert status == 200
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    status, _ = await api.call("PUT", f"/shops/{slug}/follow-reward", key, {
        "title": "10% off your first order", "percent_off": 10, "stock": 50,
        "expires_at": expires})
    assert status == 200

    context = await browser.new_context(viewport=A6_CSS_PX, device_scale_factor=2)
    page = await context.new_page()
    site = network.config.commerce.site_url.rstrip("/")
    response = await page.goto(f"{site}/s/{slug}/poster")
    assert response is not None and response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    await page.emulate_media(media="print")
    card = page.locator("article.card")
    await expect(card.locator("h1")).to_have_text("Hillside Tea Room")
    await expect(card.get_by_text("✓ Verified shop")).to_be_visible()
    await expect(card.locator(".offer")).to_contain_text("10% off your first order")
    await expect(card.get_by_text("Scan to follow us")).to_be_visible()
    await expect(page.locator("header.site")).to_be_hidden()
    box = await card.bounding_box()
    assert box is not None and abs(box["width"] - 397) < 2 and abs(box["height"] - 559) < 2
    DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await card.screenshot(path=str(DOCS_SCREENSHOT))
    # The printed code, read back from the picture, is the counted link.
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(await card.screenshot())))
    assert [f.text for f in found] == [f"{site}/s/{slug}/follow?from=poster"]
    # Printed as PDF on A6: one page.
    pdf = await page.pdf(format="A6", print_background=True, prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1

    # A buyer signed in to Mercato's pages scans it, then follows in their client.
    buyer = await new_user(network, http, "scanner")
    status, made = await _web_login(network, http, buyer.user_id, f"/s/{slug}")
    assert status == 201, made
    await page.emulate_media(media="screen")
    await page.goto(made["url"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"Signed in as {buyer.user_id}")).to_be_visible()
    scan = await context.request.get(f"{site}/s/{slug}/follow?from=poster", max_redirects=0)
    assert scan.status == 303
    assert urlsplit(scan.headers["location"]).netloc == "matrix.to"
    await buyer.join(f"#shop_{slug}:localhost")
    assert (await _first_follow(network, slug, buyer.user_id))[:2] == ("poster", "sent")
    other = await new_user(network, http, "walkin")
    await other.join(f"#shop_{slug}:localhost")
    await _first_follow(network, slug, other.user_id)
    status, stats = await api.call("GET", f"/shops/{slug}/stats", key)
    assert status == 200
    assert stats["follows"] == {"poster": 1, "elsewhere": 1}
    assert stats["poster_scans"] == 1
    await context.close()


async def _web_login(network: RunningNetwork, http: aiohttp.ClientSession,
                     user_id: str, next_path: str) -> tuple[int, dict]:
    """A one-time sign-in link for the user, as the shop bot's `web` command asks for it."""
    async with http.post(f"{network.commerce_url}/api/v1/me/web-login", json={"next": next_path},
                         headers={"Authorization":
                                  f"Bearer {network.config.commerce.service_token}",
                                  "X-Mercato-Acting-User": user_id}) as resp:
        return resp.status, await resp.json()
