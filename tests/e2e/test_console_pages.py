"""The merchant console in Chromium on the real network: every page renders for an owner at
360 and 1280 px (screenshots for the merchant guide) with no console error under the CSP;
the role table through the console (an analyst sees the dashboard, not the catalog — the
nav hides it and its address answers 403; support sees neither); a POST without the CSRF
token changes nothing."""

from __future__ import annotations

import aiohttp
from playwright.async_api import Browser, expect

from mercato_ops.testnet import RunningNetwork
from tests.e2e.console_helpers import WIDTHS, console_shop, problems, shot, signed_in
from tests.integration.shop_helpers import png


async def test_every_page_renders_for_an_owner(browser: Browser, network: RunningNetwork,
                                               http: aiohttp.ClientSession) -> None:
    shop = await console_shop(network, http, name="Tea & <b>Cups</b>")
    owner = shop.api.acting_as(shop.staff["owner"])
    media = await shop.api.call("POST", f"/shops/{shop.slug}/media", owner, data=png(320, 240))
    assert media.status == 201, media
    for n, (sku, title, price) in enumerate([("mug", "Mug <b>bold</b>", "12.00"),
                                             ("jasmine", "Jasmine tea", "7.50"),
                                             ("pot", "Teapot", "30.00")]):
        made = await shop.api.post(f"/shops/{shop.slug}/products", owner, {
            "sku": sku, "title": title, "price": price, "currency": "EUR", "quantity": 5 + n,
            **({"image_mxc": media.body["image_mxc"], "image_info": media.body["image_info"]}
               if n < 2 else {})})
        assert made.status == 201, made
    drafted = await shop.api.post(f"/shops/{shop.slug}/campaigns", owner, {
        "kind": "sale", "fields": {"title": "Spring sale", "discount": "20% off",
                                   "text": "All teapots"}})
    assert drafted.status == 201, drafted
    for width in WIDTHS:
        context, page = await signed_in(browser, shop, "owner", width=width)
        seen = problems(page)
        await expect(page.get_by_role("heading", name="Your shops")).to_be_visible()
        await page.get_by_role("link", name="Tea & <b>Cups</b>").first.click()
        await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        sections = page.locator("ul.sections")
        for label in ("Dashboard", "Catalog", "Campaigns"):
            await expect(sections.get_by_role("link", name=label)).to_be_visible()
        await expect(page.locator("#followers-chart canvas")).to_have_count(1)
        await page.goto(shop.url("catalog"))
        # HTML in a product name is text, in the table and in its input.
        await expect(page.get_by_role("link", name="mug")).to_be_visible()
        assert await page.locator("#title-p-mug").input_value() == "Mug <b>bold</b>"
        assert await page.locator("table.catalog b").count() == 0
        await shot(page, f"catalog-{width}")
        await page.goto(shop.url("campaigns"))
        await page.locator("#kind").select_option("text")
        await page.locator("#title").fill("New <i>teas</i>")
        await page.locator("#text").fill("Fresh from the garden")
        await expect(page.locator(".card-preview")).to_contain_text("New <i>teas</i>")
        await shot(page, f"campaigns-{width}")
        await page.goto(shop.url(f"campaigns/{drafted.body['id']}"))
        await expect(page.locator(".card-preview")).to_contain_text("20% off")
        await shot(page, f"campaign-{width}")
        assert seen == [], seen
        await context.close()


async def test_the_role_table_through_the_console(browser: Browser, network: RunningNetwork,
                                                  http: aiohttp.ClientSession) -> None:
    shop = await console_shop(network, http)
    context, page = await signed_in(browser, shop, "analyst")
    await page.goto(shop.url())
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    sections = page.locator("ul.sections")
    await expect(sections.get_by_role("link", name="Catalog")).to_have_count(0)
    await expect(sections.get_by_role("link", name="Campaigns")).to_have_count(0)
    for path in ("catalog", "campaigns"):
        answer = await page.goto(shop.url(path))
        assert answer is not None and answer.status == 403
        await expect(page.get_by_role("heading", name="Not open to your role")).to_be_visible()
        await expect(page.get_by_role("alert")).to_contain_text("is analyst")
    # A form the nav never showed, posted anyway, is refused and changes nothing.
    answer = await page.request.post(shop.url("catalog/products"), form={
        "csrf_token": await page.locator("meta[name=mercato-csrf]").get_attribute("content")
        or "", "sku": "sneaky", "title": "Sneaky", "price": "1.00", "currency": "EUR"},
        headers={"Origin": shop.base})
    assert answer.status == 403
    assert (await shop.api.get(f"/shops/{shop.slug}/products/sneaky")).status == 404
    await context.close()

    context, page = await signed_in(browser, shop, "support")
    answer = await page.goto(shop.url("dashboard"))
    assert answer is not None and answer.status == 403
    answer = await page.goto(shop.url("campaigns"))
    assert answer is not None and answer.status == 403
    await context.close()

    context, page = await signed_in(browser, shop, "editor")
    await page.goto(shop.url())
    await expect(page.locator("ul.sections").get_by_role("link", name="Catalog")).to_be_visible()
    await context.close()


async def test_a_post_without_csrf_token_changes_nothing(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await console_shop(network, http)
    context, page = await signed_in(browser, shop, "owner")
    answer = await page.request.post(shop.url("catalog/products"), form={
        "sku": "forged", "title": "Forged", "price": "1.00", "currency": "EUR"},
        headers={"Origin": shop.base})
    assert answer.status == 403
    assert "This form has expired" in await answer.text()
    assert (await shop.api.get(f"/shops/{shop.slug}/products/forged")).status == 404
    await context.close()
