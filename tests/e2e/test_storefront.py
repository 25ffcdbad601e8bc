"""The storefront in a buyer's browser (Debian's Chromium, the real network): browsing a shop
with and without JavaScript (search, tags, pages, thumbnails), signing in with a one-time
link, adding to the cart, checking out, and the order card arriving in the buyer's Matrix
client. Forms without the CSRF token and forged forms change nothing; a shop's HTML-looking
text shows as text; every page carries the Content-Security-Policy.

The screenshots in docs/storefront.md are taken of a real-looking shop by
test_storefront_orders.py; `_shot` is shared with it."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from playwright.async_api import Browser, BrowserContext, Page, expect

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.commerce_api import CommerceApi, new_user, open_shop
from tests.integration.shop_helpers import png

DOCS_IMAGES = Path(__file__).parents[2] / "docs" / "img"
HTML_TITLE = 'Mug <b>bold</b> & "co"'
HTML_DESCRIPTION = "Tea & cups <script>alert(1)</script> since 1999"
FILLERS = 49  # with the three named products, two pages of 48


class Storefront:
    """A shop with a catalog of 52 products, and where its pages are."""

    def __init__(self, api: CommerceApi, slug: str, owner: str, base: str) -> None:
        self.api, self.slug, self.owner, self.base = api, slug, owner, base

    def url(self, path: str = "") -> str:
        return f"{self.base}/s/{self.slug}{path}"

    def product(self, sku: str) -> str:
        return f"{self.base}/p/{self.slug}/{sku}"


async def _storefront(network: RunningNetwork, http: aiohttp.ClientSession,
                      name: str = "") -> Storefront:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug = await open_shop(api, owner.user_id, "front",
                           **({"name": name} if name else {}),
                           description=HTML_DESCRIPTION, website="https://front.example")
    assert (await api.post(f"/shops/{slug}/verify", api.operator())).status == 200
    staff = api.acting_as(owner.user_id)
    media = await api.call("POST", f"/shops/{slug}/media", staff, data=png(480, 320))
    assert media.status == 201, media
    image = {"image_mxc": media.body["image_mxc"], "image_info": media.body["image_info"]}
    products: list[dict[str, Any]] = [
        {"sku": "mug", "title": HTML_TITLE, "price": "12.00", "quantity": 3,
         "tags": ["kitchen"], **image},
        {"sku": "jasmine", "title": "Jasmine tea", "price": "7.50", "original_price": "10.00",
         "quantity": 20, "tags": ["tea"], **image},
        {"sku": "teapot", "title": "Gone teapot", "price": "30.00", "stock": "out_of_stock"},
    ] + [{"sku": f"bulk-{n:02d}", "title": f"Bulk item {n:02d}", "price": "1.00"}
         for n in range(FILLERS)]
    page_url = ""
    for product in products:
        made = await api.post(f"/shops/{slug}/products", staff, {"currency": "EUR", **product})
        assert made.status == 201, made
        page_url = made.body["page"]
    settings = await api.call("PUT", f"/shops/{slug}/orders/settings", staff, json={
        "payment_methods": {"on_delivery": {}, "bank_transfer": {"details": "IBAN DE89 3704"}},
        "delivery": ["shipping", "pickup"]})
    assert settings.status == 200, settings
    # Buyers open the public address the API hands out; cookies belong to that origin.
    parts = urlsplit(page_url)
    return Storefront(api, slug, owner.user_id, f"{parts.scheme}://{parts.netloc}")


def _problems(page: Page) -> list[str]:
    """Console errors (a CSP violation is one) and failed requests, as they happen."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(f"{m.text} ({m.location.get('url')})")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None)
    # ERR_ABORTED is a load the browser dropped because the next navigation started, not
    # a failure of the page.
    page.on("requestfailed", lambda r: seen.append(f"{r.url}: {r.failure}")
            if r.failure != "net::ERR_ABORTED" else None)
    return seen


async def _shot(page: Page, name: str) -> None:
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(DOCS_IMAGES / f"storefront-{name}.png"), full_page=True)


def _grid(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("ul.grid > li")


async def _sign_in(page: Page, shop: Storefront, user_id: str) -> None:
    """Signed out, "Add to cart" leads to the sign-in page; the one-time link (as the shop
    bot's `web` command sends it) signs in and comes back to where the buyer was."""
    await page.wait_for_url("**/web/signin?**")
    signin = urlsplit(page.url)
    assert signin.path == "/web/signin", page.url
    back_to = re.search(r"next=([^&]+)", signin.query)
    assert back_to is not None
    link = await shop.api.post("/me/web-login", shop.api.acting_as(user_id),
                               {"next": unquote(back_to.group(1))})
    assert link.status == 201, link
    await page.goto(link.body["url"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"Signed in as {user_id}")).to_be_visible()


async def test_browsing_without_javascript(browser: Browser, network: RunningNetwork,
                                           http: aiohttp.ClientSession) -> None:
    shop = await _storefront(network, http)
    context = await browser.new_context(java_script_enabled=False,
                                        viewport={"width": 360, "height": 740})
    page = await context.new_page()
    response = await page.goto(shop.url())
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "img-src 'self'" in csp and "default-src 'self'" in csp

    # The shop's own text is text, whatever it looks like.
    await expect(page.locator("h1")).to_contain_text(f"Shop {shop.slug}")
    await expect(page.locator("h1 .verified")).to_be_visible()
    await expect(page.locator(".description")).to_have_text(HTML_DESCRIPTION)
    assert "<script>alert" not in await response.text()
    follow = page.get_by_role("link", name=re.compile(r"^Follow "))
    await expect(follow).to_have_attribute(
        "href", f"https://matrix.to/#/#shop_{shop.slug}:localhost")

    # 52 products: 48 on the first page, the rest on the second, by title.
    await expect(page.locator("h2#found")).to_have_text("52 products")
    await expect(_grid(page)).to_have_count(48)
    await expect(_grid(page).first.locator(".title")).to_have_text("Bulk item 00")
    await page.get_by_role("link", name="Next →").click()
    assert page.url.endswith("?page=2")
    await expect(_grid(page)).to_have_count(4)
    mug = _grid(page).filter(has_text="Mug")
    await expect(mug.locator(".title")).to_have_text(HTML_TITLE)
    await expect(mug.locator(".stock")).to_have_text("Only 3 left")
    await expect(_grid(page).filter(has_text="Gone teapot").locator(".stock")).to_have_text(
        "Sold out")
    jasmine = _grid(page).filter(has_text="Jasmine")
    await expect(jasmine.locator(".now")).to_have_text("7.50 EUR")
    await expect(jasmine.locator("del")).to_have_text("was 10.00 EUR")
    await expect(page.get_by_role("link", name="← Previous")).to_be_visible()

    # Search is a plain form; tags are links; both keep each other.
    await page.get_by_label(re.compile("^Search ")).fill("jasmine")
    await page.get_by_role("button", name="Search").click()
    await expect(_grid(page)).to_have_count(1)
    await expect(page.locator("h2#found")).to_have_text('1 product matching “jasmine”')
    await page.get_by_role("link", name="kitchen").click()
    await expect(page.locator("h2#found")).to_contain_text("0 products")
    await page.get_by_role("link", name="Show all products").click()
    await page.get_by_role("link", name="kitchen").click()
    await expect(_grid(page)).to_have_count(1)
    await expect(page.get_by_role("link", name="kitchen")).to_have_attribute(
        "aria-current", "page")

    # A product page opens from the grid, without JavaScript too.
    await page.get_by_role("link", name=HTML_TITLE).click()
    await expect(page.locator("h1")).to_have_text(HTML_TITLE)
    await expect(page.get_by_role("button", name="Add to cart")).to_be_visible()
    await context.close()


async def test_thumbnails_and_no_console_errors(browser: Browser, network: RunningNetwork,
                                                http: aiohttp.ClientSession) -> None:
    shop = await _storefront(network, http)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    problems = _problems(page)
    await page.goto(shop.url("?tag=tea"))
    image = _grid(page).first.locator("img")
    await expect(image).to_be_visible()
    # The picture is lazy: wait until it is decoded rather than reading it half-loaded.
    width = await image.evaluate("i => i.decode().then(() => i.naturalWidth, () => 0)")
    # The homeserver's thumbnail, smaller than the 480 px original.
    assert 0 < width <= 320, (width, problems)
    await page.goto(shop.url("?page=2"))  # the named products, with their pictures
    assert problems == []
    await context.close()


async def test_sign_in_add_to_cart_check_out_and_the_card_arrives(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await _storefront(network, http, name="Front Porch Tea")
    buyer = await new_user(network, http, "buyer")
    for width, height in ((1280, 900), (360, 740)):
        context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        problems = _problems(page)
        # The second time round the mug has one left: the phone buys jasmine tea first.
        await page.goto(shop.product("mug" if width == 1280 else "jasmine"))
        await page.get_by_label("Quantity").fill("2" if width == 1280 else "1")
        await page.get_by_role("button", name="Add to cart").click()
        if width == 1280:
            await _sign_in(page, shop, buyer.user_id)
            assert urlsplit(page.url).path == f"/p/{shop.slug}/mug"
            await page.get_by_label("Quantity").fill("2")
            await page.get_by_role("button", name="Add to cart").click()
            await expect(page.locator("h1")).to_have_text("Your cart at Front Porch Tea")
        else:
            await _sign_in(page, shop, buyer.user_id)
            await page.get_by_role("button", name="Add to cart").click()
        await _buy(page, shop, buyer, width)
        # Refused forms answer 4xx on purpose (the page says why); nothing else may fail.
        assert [p for p in problems if not re.search(
            r"status of 4(00|09) .*/(cart|checkout)\)$", p)] == []
        await context.close()


async def _buy(page: Page, shop: Storefront, buyer: MatrixClient, width: int) -> None:
    """From the cart to the placed order and its card in the buyer's client."""
    if width == 1280:
        line = page.locator("table.cart tbody tr")
        await expect(line).to_have_count(1)
        await expect(line).to_contain_text(HTML_TITLE)
        await expect(page.locator("#subtotal")).to_have_text("24.00 EUR")
        # More than the shop has: the API's sentence, on the page, and the cart unchanged.
        await page.get_by_label(f"Quantity of {HTML_TITLE}").fill("4")
        await page.get_by_role("button", name=re.compile("^Update")).click()
        await expect(page.locator(".error")).to_contain_text("Only 3 of")
        await expect(page.locator("#subtotal")).to_have_text("24.00 EUR")
    else:
        await expect(page.locator("table.cart tbody tr")).to_contain_text("Jasmine tea")
        await page.get_by_role("button", name=re.compile("^Remove Jasmine")).click()
        await expect(page.locator("table.cart tbody tr")).to_have_count(0)
        await page.goto(shop.product("mug"))
        await page.get_by_role("button", name="Add to cart").click()
    await page.get_by_role("link", name="Check out").click()

    # A bad coupon and a missing address: said on the form, nothing ordered.
    await page.get_by_label("Coupon code").fill("NOPE12")
    await page.get_by_role("button", name="Apply code").click()
    await expect(page.locator("#checkout-error")).to_contain_text(
        "NOPE12 is not a code of Front Porch Tea")
    await page.get_by_label("Coupon code").fill("")
    await page.get_by_label("Shipping to your address", exact=True).check()
    await page.get_by_role("button", name="Place order").click()
    await expect(page.locator("#address-error")).to_have_text("Enter the address to ship to.")
    await expect(page.get_by_role("radio", name=re.compile("Pay on delivery"))).to_be_checked()
    await page.get_by_label("Address (for shipping)", exact=True).fill(
        "Hauptstraße 1, 10115 Berlin")
    await page.get_by_label(re.compile("^Phone")).fill("+49 30 1234567")
    await expect(page.locator("#total")).to_have_text("24.00 EUR" if width == 1280
                                                      else "12.00 EUR")
    await page.get_by_role("button", name="Place order").click()

    placed = page.locator("#placed")
    await expect(placed).to_contain_text("is in your chat with Front Porch Tea")
    order_id = re.search(r"order ([A-Z0-9]{6}) is", await placed.inner_text())
    assert order_id is not None
    shop_user = f"@shop_{shop.slug}:localhost"
    await expect(placed.get_by_role("link", name="Front Porch Tea")).to_have_attribute(
        "href", f"https://matrix.to/#/{shop_user}")
    # Reloading the confirmation places nothing again: the cart is empty.
    cart = await shop.api.get(f"/me/cart/{shop.slug}", shop.api.acting_as(buyer.user_id))
    assert cart.body["items"] == []
    await _card_arrives(buyer, shop_user, order_id.group(1))


async def _card_arrives(buyer: MatrixClient, shop_user: str, order_id: str) -> None:
    dm = await _dm_with(buyer, shop_user)
    card = await buyer.wait_for_message(dm, lambda e: e.get("content", {}).get(
        "org.mercato.order", {}).get("id") == order_id and "m.relates_to" not in e["content"])
    assert card["sender"] == shop_user
    assert f"Order {order_id}" in card["content"]["body"]
    assert "Hauptstraße 1" in card["content"]["body"]


async def _dm_with(buyer: MatrixClient, shop_user: str) -> str:
    """The buyer's DM with the shop, as their /sync shows it: an invite (joined here) on the
    first order, a room already joined afterwards."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rooms = (await buyer.sync(timeout_ms=1000)).get("rooms", {})
        for room_id, room in rooms.get("invite", {}).items():
            if any(e.get("sender") == shop_user for e in room["invite_state"]["events"]):
                await buyer.join(room_id)
                return room_id
        for room_id, room in rooms.get("join", {}).items():
            if any(e.get("sender") == shop_user for e in room["timeline"]["events"]):
                return room_id
    raise AssertionError(f"{shop_user} never wrote to {buyer.user_id}")


async def _signed_in_context(browser: Browser, shop: Storefront,
                             buyer: MatrixClient) -> tuple[BrowserContext, Page]:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(shop.product("mug"))
    await page.get_by_role("button", name="Add to cart").click()
    await _sign_in(page, shop, buyer.user_id)
    return context, page


async def test_forms_without_the_token_or_forged_change_nothing(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await _storefront(network, http)
    other = await _storefront(network, http)
    buyer = await new_user(network, http, "buyer")
    context, page = await _signed_in_context(browser, shop, buyer)
    token = await page.locator("meta[name=mercato-csrf]").get_attribute("content")
    assert token

    # No token: refused with the page that says nothing changed.
    refused = await context.request.post(shop.url("/cart/add"),
                                         form={"sku": "mug", "quantity": "1"})
    assert refused.status == 403 and "Nothing was changed" in await refused.text()
    # A real token, but a product of another shop named in this shop's form.
    elsewhere = await other.api.post(f"/shops/{other.slug}/products",
                                     other.api.acting_as(other.owner), {
                                         "sku": "elsewhere", "title": "Elsewhere",
                                         "price": "5.00", "currency": "EUR"})
    assert elsewhere.status == 201, elsewhere
    forged = await context.request.post(shop.url("/cart/add"), form={
        "csrf_token": token, "sku": "elsewhere", "quantity": "1"})
    assert forged.status == 404
    assert "There is no product &#39;elsewhere&#39;" in await forged.text()
    for slug in (shop.slug, other.slug):
        cart = await shop.api.get(f"/me/cart/{slug}", shop.api.acting_as(buyer.user_id))
        assert cart.body["items"] == [], cart
    await context.close()
