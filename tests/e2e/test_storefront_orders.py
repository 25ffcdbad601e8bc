"""The storefront after the order, in a buyer's browser (Debian's Chromium, the real network):
the buyer's orders at every shop, an order's page with its history after the shop moves it
through the API, Cancel (whose card edit arrives in the buyer's Matrix client) and its
refusal once shipped, Forget my address, another buyer's order answering 404; checkout's
refusals next to their field in a buyer's words with the typed values kept; a coupon
claimed from a real coupon campaign taking its discount at web checkout; the follow reward
beside Follow and the cart count in the header.

The shop here looks like a real one (the demo catalog's pictures, real product names), and
its pages at 360 and 1280 px wide are the screenshots in docs/storefront.md."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from playwright.async_api import Browser, BrowserContext, Page, expect

from mercato_ops.testnet import RunningNetwork
from tests.e2e.test_storefront import Storefront, _dm_with, _problems, _shot, _sign_in
from tests.integration.client import MatrixClient
from tests.integration.commerce_api import CommerceApi, new_user, open_shop
from tests.integration.test_orders_campaign import _claimed_code, _coupon_campaign

DEMO_PICTURES = Path(__file__).parents[2] / "mercato_ops" / "demo_assets"
SHOP_NAME = "Front Porch Tea"
ADDRESS = "Hauptstraße 1, 10115 Berlin"
CATALOG: list[dict[str, Any]] = [
    {"sku": "jasmine", "title": "Jasmine green tea, 100 g", "price": "7.50",
     "original_price": "10.00", "quantity": 40, "tags": ["tea"], "picture": "tea.jpg",
     "description": "Spring-picked green tea scented with jasmine blossoms, from Fujian."},
    {"sku": "mug", "title": "Stoneware mug", "price": "14.00", "quantity": 4,
     "tags": ["kitchen"], "picture": "mug.jpg",
     "description": "Hand-thrown, glazed in sea green, 300 ml. Dishwasher safe."},
    {"sku": "coffee", "title": "Single-origin coffee, 250 g", "price": "11.90",
     "quantity": 25, "tags": ["coffee"], "picture": "coffee.jpg",
     "description": "Washed Ethiopian beans, roasted light in Leipzig every Tuesday."},
    {"sku": "tote", "title": "Linen tote bag", "price": "19.00", "quantity": 12,
     "tags": ["bags"], "picture": "tote.jpg",
     "description": "Natural linen with long handles; carries a week of groceries."},
    {"sku": "notebook", "title": "Dot-grid notebook A5", "price": "9.50",
     "stock": "out_of_stock", "tags": ["paper"], "picture": "notebook.jpg",
     "description": "120 pages of 100 g paper that takes fountain pens."},
]


async def _real_looking_shop(network: RunningNetwork, http: aiohttp.ClientSession) -> Storefront:
    """A verified shop with the demo catalog's pictures, shipping and pickup, three payment
    methods and a follow reward."""
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug = await open_shop(api, owner.user_id, "porch", name=SHOP_NAME, description=(
        "Loose-leaf tea, coffee and things for the table, packed by hand in Leipzig."),
        website="https://frontporch.example")
    assert (await api.post(f"/shops/{slug}/verify", api.operator())).status == 200
    staff = api.acting_as(owner.user_id)
    page_url = ""
    for product in CATALOG:
        fields = {k: v for k, v in product.items() if k != "picture"}
        media = await api.call("POST", f"/shops/{slug}/media", staff, data=(
            DEMO_PICTURES / product["picture"]).read_bytes(),
            headers={"Content-Type": "image/jpeg"})
        assert media.status == 201, media
        made = await api.post(f"/shops/{slug}/products", staff, {
            "currency": "EUR", "image_mxc": media.body["image_mxc"],
            "image_info": media.body["image_info"], **fields})
        assert made.status == 201, made
        page_url = made.body["page"]
    settings = await api.call("PUT", f"/shops/{slug}/orders/settings", staff, json={
        "payment_methods": {"on_delivery": {}, "pickup": {},
                            "bank_transfer": {"details": "IBAN DE89 3704 0044 0532 0130 00"}},
        "delivery": ["shipping", "pickup"]})
    assert settings.status == 200, settings
    reward = await api.call("PUT", f"/shops/{slug}/follow-reward", staff, json={
        "title": "Welcome gift", "percent_off": 10, "stock": 50,
        "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat()})
    assert reward.status == 200, reward
    parts = urlsplit(page_url)
    return Storefront(api, slug, owner.user_id, f"{parts.scheme}://{parts.netloc}")


async def _order_by_api(shop: Storefront, buyer: MatrixClient, sku: str,
                        **delivery: str) -> str:
    placed = await shop.api.post("/me/orders", shop.api.acting_as(buyer.user_id), {
        "shop": shop.slug, "items": [{"sku": sku, "quantity": 1}],
        "delivery": delivery or {"kind": "shipping", "address": ADDRESS},
        "payment": "pickup" if delivery.get("kind") == "pickup" else "on_delivery"})
    assert placed.status == 201, placed
    return str(placed.body["id"])


async def _move(shop: Storefront, order_id: str, **change: str) -> None:
    moved = await shop.api.post(f"/shops/{shop.slug}/orders/{order_id}/status",
                                shop.api.acting_as(shop.owner), change)
    assert moved.status == 200, moved


async def _signed_in(browser: Browser, shop: Storefront, buyer: MatrixClient,
                     width: int = 1280) -> tuple[BrowserContext, Page]:
    """A browser signed in as the buyer, on their orders page."""
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await page.goto(f"{shop.base}/orders")
    await _sign_in(page, shop, buyer.user_id)
    return context, page


async def test_a_real_looking_shop_checkout_in_a_buyers_words_and_my_orders(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await _real_looking_shop(network, http)
    for width, height in ((1280, 900), (360, 740)):
        buyer = await new_user(network, http, "ana")
        earlier = await _order_by_api(shop, buyer, "coffee", kind="pickup")
        await _move(shop, earlier, status="confirmed")
        await _move(shop, earlier, status="delivered")  # collected and paid at the shop
        context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        problems = _problems(page)
        await page.goto(shop.product("jasmine"))
        await page.get_by_role("button", name="Add to cart").click()
        await _sign_in(page, shop, buyer.user_id)
        await expect(page.locator("h1")).to_have_text("Jasmine green tea, 100 g")
        await _shot(page, f"product-{width}")
        await page.get_by_label("Quantity").fill("2")
        await page.get_by_role("button", name="Add to cart").click()
        await page.goto(shop.product("mug"))
        await page.get_by_role("button", name="Add to cart").click()
        await expect(page.locator("table.cart tbody tr")).to_have_count(2)
        await expect(page.locator(".cart-link")).to_contain_text("3")
        await _shot(page, f"cart-{width}")

        # The shop: the follow reward beside Follow, the cart's count in the header.
        await page.goto(shop.url())
        await expect(page.locator("#follow-reward")).to_contain_text(
            "Welcome gift: 10% off your order")
        await expect(page.locator("#follow-reward")).to_contain_text("(50 left)")
        await expect(page.get_by_role("link", name="Cart (3 items)")).to_be_visible()
        await expect(page.locator("ul.grid > li")).to_have_count(5)
        await _shot(page, f"shop-{width}")

        # Shipping without an address: said next to the field, what was typed kept.
        await page.goto(shop.url("/checkout"))
        await page.get_by_label("Shipping to your address", exact=True).check()
        await page.get_by_label(re.compile("^Phone")).fill("+49 30 1234567")
        await page.get_by_role("radio", name=re.compile("^Bank transfer")).check()
        await page.get_by_role("button", name="Place order").click()
        await expect(page.locator("#address-error")).to_have_text("Enter the address to ship to.")
        await expect(page.locator("#address")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#checkout-error")).to_have_text("Enter the address to ship to.")
        assert "delivery.address" not in await page.content()
        await expect(page.get_by_label(re.compile("^Phone"))).to_have_value("+49 30 1234567")
        await expect(page.get_by_role("radio", name=re.compile("^Bank transfer"))).to_be_checked()
        await expect(page.get_by_label("Shipping to your address", exact=True)).to_be_checked()

        # A payment that does not fit the delivery names the ones that do.
        await page.get_by_label("Address (for shipping)", exact=True).fill(ADDRESS)
        await page.get_by_role("radio", name=re.compile("^Pay at pickup")).check()
        await page.get_by_role("button", name="Place order").click()
        await expect(page.locator("#payment-error")).to_have_text(
            "Pay at pickup does not go with shipping to your address; choose Pay on delivery "
            "or Bank transfer.")
        await expect(page.get_by_label("Address (for shipping)", exact=True)).to_have_value(
            ADDRESS)

        # The screenshot: a fresh form, filled in as a buyer would.
        await page.goto(shop.url("/checkout"))
        await page.get_by_label("Shipping to your address", exact=True).check()
        await page.get_by_label("Address (for shipping)", exact=True).fill(ADDRESS)
        await page.get_by_label(re.compile("^Phone")).fill("+49 30 1234567")
        await expect(page.locator("#total")).to_have_text("29.00 EUR")
        await page.locator("h1").click()  # no field focused in the picture
        await _shot(page, f"checkout-{width}")
        await page.get_by_role("button", name="Place order").click()
        placed = page.locator("#placed")
        await expect(placed).to_contain_text(f"is in your chat with {SHOP_NAME}")
        await expect(page.locator("h1")).to_have_text("Thank you!")
        order_id = urlsplit(page.url).path.rsplit("/", 1)[-1]
        await expect(page.locator(".cart-link .count")).to_have_count(0)

        # My orders: both, newest first, each with its shop, items, total, status and link.
        await _move(shop, order_id, status="confirmed")
        await page.get_by_role("link", name="All my orders").click()
        cards = page.locator("li.order-card")
        await expect(cards).to_have_count(2)
        await expect(cards.nth(0)).to_contain_text(f"Order {order_id}")
        await expect(cards.nth(0)).to_contain_text(SHOP_NAME)
        await expect(cards.nth(0)).to_contain_text(
            "2 × Jasmine green tea, 100 g, 1 × Stoneware mug")
        await expect(cards.nth(0).locator(".total")).to_have_text("29.00 EUR")
        await expect(cards.nth(0).locator(".status")).to_contain_text("Confirmed")
        await expect(cards.nth(1)).to_contain_text(f"Order {earlier}")
        await expect(cards.nth(1).locator(".status")).to_contain_text("Delivered")
        await _shot(page, f"orders-{width}")
        await cards.nth(1).get_by_role("link", name=f"Order {earlier}").click()
        await expect(page.locator("#how-to-pay")).to_contain_text("Paid.")
        await expect(page.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)
        assert [p for p in problems if not re.search(r"status of 400 .*/checkout\)$", p)] == []
        await context.close()


async def test_order_page_history_cancel_forget_and_another_buyers_order(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await _real_looking_shop(network, http)
    buyer = await new_user(network, http, "buyer")
    shipped = await _order_by_api(shop, buyer, "tote")
    to_cancel = await _order_by_api(shop, buyer, "mug")
    await _move(shop, shipped, status="confirmed")
    await _move(shop, shipped, status="shipped", carrier="DHL", tracking="00340434161234567890",
                tracking_url="https://www.dhl.com/de-en/home/tracking.html?tracking-id=0034")
    context, page = await _signed_in(browser, shop, buyer)

    # The order's page: every step with who made it, the tracking, how to pay; no Cancel.
    await page.goto(shop.url(f"/orders/{shipped}"))
    history = page.locator("#history li")
    await expect(history).to_have_count(3)
    await expect(history.nth(0)).to_contain_text("Placed — waiting for the shop")
    await expect(history.nth(0)).to_contain_text("by You")
    await expect(history.nth(2)).to_contain_text(f"Shipped by {SHOP_NAME}")
    await expect(history.nth(2)).to_contain_text("DHL 00340434161234567890")
    await expect(page.locator("#tracking")).to_contain_text("DHL")
    await expect(page.get_by_role("link", name="Track the parcel")).to_have_attribute(
        "href", re.compile(r"^https://www\.dhl\.com/"))
    await expect(page.locator("#how-to-pay")).to_contain_text("to the courier")
    refusal = (f"Order {shipped} was already shipped; it can no longer be cancelled. "
               "Ask the shop about a return.")
    await expect(page.locator("#cancel-refusal")).to_have_text(refusal)
    await expect(page.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)
    # A form sent anyway (a page left open) is refused with the rule's sentence.
    token = await page.locator("meta[name=mercato-csrf]").get_attribute("content")
    late = await context.request.post(shop.url(f"/orders/{shipped}/cancel"),
                                      form={"csrf_token": token or ""})
    assert late.status == 409 and "can no longer be cancelled" in await late.text()

    # Cancel from the page: the card in the buyer's chat is edited to say so.
    dm = await _dm_with(buyer, f"@shop_{shop.slug}:localhost")
    await page.goto(shop.url(f"/orders/{to_cancel}"))
    await page.get_by_label(re.compile("^Why are you cancelling")).fill("Ordered twice")
    await page.get_by_role("button", name=f"Cancel order {to_cancel}").click()
    await expect(page.locator("#changed")).to_contain_text(f"You cancelled order {to_cancel}")
    await expect(page.locator("#status")).to_have_text("Cancelled")
    await expect(page.locator("#history li").last).to_contain_text("Ordered twice")
    edit = await buyer.wait_for_message(dm, lambda e: e.get("content", {}).get(
        "m.relates_to", {}).get("rel_type") == "m.replace" and e["content"]["m.new_content"][
        "org.mercato.order"] == {**e["content"]["m.new_content"]["org.mercato.order"],
                                 "id": to_cancel, "status": "cancelled"})
    assert "Ordered twice" in edit["content"]["m.new_content"]["body"]

    # Delivered: the address may be forgotten, here and on the card.
    await _move(shop, shipped, status="delivered")
    await page.goto(shop.url(f"/orders/{shipped}"))
    await expect(page.locator(".address")).to_have_text(ADDRESS)
    await page.get_by_role("button", name="Forget my address").click()
    await expect(page.locator("#changed")).to_contain_text("are erased")
    await expect(page.locator(".address")).to_have_count(0)
    order = await shop.api.get(f"/me/orders/{shipped}", shop.api.acting_as(buyer.user_id))
    assert order.status == 200 and order.body["delivery"]["address"] is None, order

    # Another buyer signed in opens the same address: not found, nothing of the order shown.
    rival = await new_user(network, http, "rival")
    other, other_page = await _signed_in(browser, shop, rival)
    await expect(other_page.locator("li.order-card")).to_have_count(0)
    answer = await other_page.goto(shop.url(f"/orders/{shipped}"))
    assert answer is not None and answer.status == 404
    assert ADDRESS not in await other_page.content()
    refused = await other.request.post(shop.url(f"/orders/{to_cancel}/cancel"), form={
        "csrf_token": await other_page.locator("meta[name=mercato-csrf]").get_attribute(
            "content") or ""})
    assert refused.status == 404
    await other.close()
    await context.close()


async def test_a_coupon_from_a_campaign_takes_its_discount_at_web_checkout(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await _real_looking_shop(network, http)
    buyer = await new_user(network, http, "buyer")
    post_link = shop.product("tote").replace("http:", "https:")  # posts link over https
    campaign = await _coupon_campaign(shop.api, shop.slug, shop.owner, "Tote week",
                                      f"10% off our linen tote: {post_link}")
    code = await _claimed_code(shop.api, buyer, campaign)
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(shop.product("tote"))
    await page.get_by_role("button", name="Add to cart").click()
    await _sign_in(page, shop, buyer.user_id)
    await page.get_by_role("button", name="Add to cart").click()
    await page.get_by_role("link", name="Check out").click()
    await page.get_by_label("Pick up at the shop", exact=True).check()
    await page.get_by_role("radio", name=re.compile("^Pay at pickup")).check()
    await page.get_by_label("Coupon code").fill(code.lower())
    await page.get_by_role("button", name="Apply code").click()
    await expect(page.locator("#discount")).to_have_text("−1.90 EUR")
    await expect(page.locator("#total")).to_have_text("17.10 EUR")
    await expect(page.get_by_role("radio", name=re.compile("^Pay at pickup"))).to_be_checked()
    await page.get_by_role("button", name="Place order").click()
    await expect(page.locator("#discount")).to_have_text("−1.90 EUR")
    order_id = urlsplit(page.url).path.rsplit("/", 1)[-1]

    dm = await _dm_with(buyer, f"@shop_{shop.slug}:localhost")
    card = await buyer.wait_for_message(dm, lambda e: e.get("content", {}).get(
        "org.mercato.order", {}).get("id") == order_id and "m.relates_to" not in e["content"])
    assert f"Discount ({code}): −1.90 EUR" in card["content"]["body"]
    assert "Total: 17.10 EUR" in card["content"]["body"]

    # Used once: the same code again is refused next to the coupon field, in a sentence.
    await page.goto(shop.product("tote"))
    await page.get_by_role("button", name="Add to cart").click()
    await page.get_by_role("link", name="Check out").click()
    await page.get_by_label("Coupon code").fill(code)
    await page.get_by_role("button", name="Apply code").click()
    await expect(page.locator("#coupon-error")).to_have_text(f"{code} was already used.")
    await expect(page.get_by_label("Coupon code")).to_have_value(code)
    await context.close()
