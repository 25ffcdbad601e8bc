"""What a buyer's browser shows of a product page: real Chromium, real network."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, Page, expect

from mercato_ops.testnet import RunningNetwork
from tests.integration.shop_helpers import Api, new_user, open_shop, png

DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "img" / "product-page.png"
IMAGE_SIZE = (480, 320)


async def _product_page(network: RunningNetwork, http: aiohttp.ClientSession, api: Api,
                        shop_name: str | None = None, **product: str) -> tuple[str, str]:
    """A verified shop with one product and its image: (page URL, shop slug)."""
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    if shop_name:  # names are unique on a network: one that imitates another is refused
        status, shop = await api.call("PATCH", f"/shops/{slug}", key, {"name": shop_name})
        assert status == 200, shop
    status, media = await api.call("POST", f"/shops/{slug}/media", key, data=png(*IMAGE_SIZE))
    assert status == 201, media
    status, created = await api.call("POST", f"/shops/{slug}/products", key, {
        "price": "12.5", "currency": "EUR", "stock": "in_stock", **product,
        "image_mxc": media["image_mxc"], "image_info": media["image_info"]})
    assert status == 201, created
    # Buyers open the public address the API hands out; the page's CSP allows images from
    # that origin only, so the same page reached as 127.0.0.1 shows no image.
    assert created["page"].endswith(f"/p/{slug}/{product['sku']}"), created
    return created["page"], slug


def _problems(page: Page) -> list[str]:
    """Console errors (a CSP violation is one) and failed requests, as they happen."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(f"{m.text} ({m.location.get('url')})")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None)
    page.on("requestfailed", lambda r: seen.append(f"{r.url}: {r.failure}"))
    return seen


async def test_buyer_sees_title_price_image_and_channel_link(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession, api: Api,
        tmp_path: Path) -> None:
    url, slug = await _product_page(
        network, http, api, shop_name="Tea House", sku="jasmine-1", title="Jasmine green tea",
        description="Hand-rolled pearls from Fujian, 100 g tin. Steep 3 minutes at 80 °C.")
    context = await browser.new_context(viewport={"width": 800, "height": 600})
    page = await context.new_page()
    problems = _problems(page)
    response = await page.goto(url, wait_until="load")
    assert response is not None and response.status == 200

    assert "Jasmine green tea" in await page.title()
    assert "12.50 EUR" in await page.title()
    await expect(page.locator("#price")).to_be_visible()
    await expect(page.locator("#price")).to_have_text("12.50 EUR")
    image = page.locator("img.product")
    await expect(image).to_be_visible()
    loaded_width = await page.evaluate(
        "() => { const i = document.querySelector('img.product');"
        " return i.complete ? i.naturalWidth : 0; }")
    assert loaded_width == IMAGE_SIZE[0], f"the product image did not load: {problems}"
    channel = page.get_by_role("link", name=re.compile(r"^Open .* channel"))
    await expect(channel).to_have_attribute("href", f"https://matrix.to/#/#shop_{slug}:localhost")
    assert problems == []

    shot = tmp_path / "product-page.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 5_000
    DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, DOCS_SCREENSHOT)
    await context.close()


async def test_page_works_without_javascript(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession,
        api: Api) -> None:
    url, _ = await _product_page(network, http, api, sku="oolong-2", title="Oolong")
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    # The switch really is off: a page's own script does not run.
    await page.set_content("<title>static</title><script>document.title = 'ran'</script>")
    assert await page.title() == "static"

    response = await page.goto(url)
    assert response is not None and response.status == 200
    await expect(page.locator("#price")).to_be_visible()
    await expect(page.locator("#price")).to_have_text("12.50 EUR")
    await expect(page.locator("img.product")).to_be_visible()
    await context.close()


async def test_html_looking_text_is_shown_not_run(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession,
        api: Api) -> None:
    title = 'Tea <3 & "more"'
    url, _ = await _product_page(network, http, api, sku="tea-3", title=title,
                                 description="Steep <3 minutes & enjoy > 2 cups")
    context = await browser.new_context()
    page = await context.new_page()
    response = await page.goto(url)
    assert response is not None and response.status == 200

    heading = page.locator("h1")
    await expect(heading).to_have_text(title)
    assert await heading.locator("*").count() == 0, "the title became markup"
    await expect(page.locator("img.product")).to_have_attribute("alt", title)
    await expect(page.get_by_text("Steep <3 minutes & enjoy > 2 cups")).to_be_visible()
    assert title in await page.title()
    assert "Tea &lt;3 &amp; &#34;more&#34;" in await response.text()
    await context.close()
