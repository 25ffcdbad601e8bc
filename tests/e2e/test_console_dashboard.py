"""The console's dashboard of a shop that has traded, in Chromium on the real network:
followers who joined its channel, a coupon campaign they claimed codes from, and orders
(two paying with a code) are the figures the owner reads at 360 and 1280 px, the same as
the stats API's; the campaign's row counts its claims, redemptions and the orders of the
product it linked to; a buyer's recommendation of a product is counted in the Circle panel.
Its screenshots are the merchant guide's."""

from __future__ import annotations

import asyncio

import aiohttp
from playwright.async_api import Browser, expect

from mercato_ops.testnet import RunningNetwork
from tests.e2e.console_helpers import WIDTHS, console_shop, problems, shot, signed_in
from tests.integration.commerce_api import new_user
from tests.integration.shop_helpers import png
from tests.integration.test_orders_campaign import _claimed_code, _coupon_campaign, _posted

FOLLOWERS = 5


async def test_a_traded_shops_dashboard_shows_what_happened(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await console_shop(network, http, name="Hillside Tea Room")
    api, slug = shop.api, shop.slug
    owner = api.acting_as(shop.staff["owner"])
    media = await api.call("POST", f"/shops/{slug}/media", owner, data=png(320, 240))
    assert media.status == 201, media
    for sku, title, price in (("sencha", "Sencha, 100 g", "9.50"),
                              ("pot", "Stoneware teapot", "34.00")):
        made = await api.post(f"/shops/{slug}/products", owner, {
            "sku": sku, "title": title, "price": price, "currency": "EUR", "quantity": 20,
            "image_mxc": media.body["image_mxc"], "image_info": media.body["image_info"]})
        assert made.status == 201, made
    followers = await asyncio.gather(*(new_user(network, http, f"follower{n}")
                                       for n in range(FOLLOWERS)))
    channel = await followers[0].join(f"#shop_{slug}:localhost")
    await asyncio.gather(*(f.join(channel) for f in followers[1:]))
    page_url = f"https://localhost:{network.config.commerce.port}/p/{slug}/pot"
    campaign = await _coupon_campaign(api, slug, shop.staff["owner"], "Teapot week",
                                      f"10% off our stoneware teapot: {page_url}")
    await followers[0].wait_for_message(channel, _posted(f"@shop_{slug}:localhost",
                                                         "Teapot week"))
    codes = [await _claimed_code(api, f, campaign) for f in followers[:3]]
    for n, code in enumerate([codes[0], codes[1], None]):
        placed = await api.post("/me/orders", api.acting_as(followers[n].user_id), {
            "shop": slug, "items": [{"sku": "pot", "quantity": 1}, {"sku": "sencha",
                                                                   "quantity": 2}],
            "delivery": {"kind": "pickup"}, "payment": "pickup",
            **({"coupon": code} if code else {})})
        assert placed.status == 201, placed
    # A sixth buyer passes the teapot on in their Circle.
    recommender = await new_user(network, http, "recommender")
    circle = await api.post("/me/circle", api.acting_as(recommender.user_id))
    assert circle.status == 200, circle
    recommended = await api.post("/me/circle/recommendations", api.acting_as(
        recommender.user_id), {"shop": slug, "sku": "pot", "note": "Pours well"})
    assert recommended.status in (200, 201), recommended
    deadline = asyncio.get_running_loop().time() + 30
    while (await api.get(f"/shops/{slug}/stats", owner)).body["circle"][
            "products_recommended"] < 1:  # counted once it is posted
        assert asyncio.get_running_loop().time() < deadline, "the recommendation was not sent"
        await asyncio.sleep(0.3)
    stats = (await api.get(f"/shops/{slug}/stats", owner)).body
    # Three orders of 53.00: two with 10% off (47.70 each), one without.
    assert stats["orders"]["count"] == 3 and stats["orders"]["revenue"] == {
        "EUR": "148.40"}, stats["orders"]
    # The campaign linked to the teapot: all three orders of it are credited to it.
    row = next(c for c in stats["campaigns"] if c["id"] == campaign["id"])
    assert (row["claims"], row["redemptions"], row["orders"]) == (3, 2, 3), row

    for width in WIDTHS:
        context, page = await signed_in(browser, shop, "owner", width=width)
        seen = problems(page)
        await page.goto(shop.url("dashboard"))
        figures = page.locator("ul.figures li")
        for expected in (f"{FOLLOWERS} followers", "3 coupons claimed", "2 redeemed",
                         "3 orders", "148.40 EUR revenue"):
            await expect(figures.filter(has_text=expected)).to_have_count(1)
        campaign_row = page.get_by_role("row").filter(has_text="Teapot week")
        await expect(campaign_row).to_contain_text("sent")
        await expect(page.locator("#followers-chart canvas")).to_have_count(1)
        circle_panel = page.get_by_role("region", name="Circle")
        for label, figure in (("Products recommended", "1"),
                              ("Channel posts recommended", "0")):
            await expect(circle_panel.get_by_role("row").filter(has_text=label).locator(
                "td.num")).to_have_text(figure)
        await shot(page, f"dashboard-{width}")
        assert seen == [], seen
        await context.close()
