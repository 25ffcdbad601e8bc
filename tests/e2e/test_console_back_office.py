"""The console's back office in Chromium against the real network, at 360 and 1280 px: the
Coupons page's till (a buyer's code from the follow reward redeemed once, then refused),
the Orders board (an order confirmed and shipped, the buyer's card edit arriving in the
buyer's own client's /sync, the packing slip printed), Customers (a buyer's message with
HTML in it shown as text, a link into the staff room's thread), Settings (an API key shown
once and revoked, a webhook whose secret is shown once and whose delivery log fills), the
role table through the console, and a form without its CSRF token refused.

Screenshots: docs/img/console-coupons.png, console-orders.png, console-slip.png,
console-customers.png, console-settings.png (1280 px) and console-orders-360.png."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from playwright.async_api import Browser, Page, expect

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.commerce_api import (
    CommerceApi,
    commerce_rows,
    joined,
    new_user,
    open_shop,
)
from tests.integration.local_https import Certificate
from tests.integration.webhook_receiver import WebhookReceiver

DOCS_IMAGES = Path(__file__).parents[2] / "docs" / "img"
WIDTHS = (360, 1280)
ADDRESS = "Hafenstraße 12, 20457 Hamburg"
CODE = re.compile(r"\b([A-HJ-NP-Z2-9]{10})\b")
SHIPPED_LINK = "https://www.dhl.com/track?id=JJD0099"
# The elements reaching past the window's right edge (what a failed width check names).
WIDEST = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
  .filter(e => { for (let a = e.parentElement; a; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== 'visible') return false; } return true; })
  .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' +
                   Math.round(e.getBoundingClientRect().right))"""


@dataclass
class BackOffice:
    api: CommerceApi
    slug: str
    owner: str
    base: str  # the site's public address, which the browser signs in to

    def url(self, rest: str = "") -> str:
        return f"{self.base}/console/{self.slug}/{rest}"


async def _back_office(network: RunningNetwork, http: aiohttp.ClientSession) -> BackOffice:
    """An approved shop with a lamp in stock, shipping and pickup, paid on delivery."""
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug = await open_shop(api, owner.user_id, "office", name="Harbour Lamps",
                           website="https://lamps.example")
    staff = api.acting_as(owner.user_id)
    made = await api.post(f"/shops/{slug}/products", staff, {
        "sku": "lamp", "title": "Desk lamp", "price": "30.00", "currency": "EUR",
        "quantity": 20})
    assert made.status == 201, made
    settings = await api.call("PUT", f"/shops/{slug}/orders/settings", staff, json={
        "payment_methods": {"on_delivery": {}}, "delivery": ["shipping", "pickup"]})
    assert settings.status == 200, settings
    parts = urlsplit(made.body["page"])
    return BackOffice(api, slug, owner.user_id, f"{parts.scheme}://{parts.netloc}")


async def _signed_in(browser: Browser, office: BackOffice, user_id: str,
                     width: int = 1280) -> Page:
    """A browser signed in as `user_id` with the one-time link the shop bot's `web` sends."""
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    link = await office.api.post("/me/web-login", office.api.acting_as(user_id),
                                 {"next": f"/console/{office.slug}/"})
    assert link.status == 201, link
    await page.goto(link.body["url"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"Signed in as {user_id}")).to_be_visible()
    return page


async def _shot(page: Page, name: str) -> None:
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(DOCS_IMAGES / f"console-{name}.png"), full_page=True)


async def _place_order(office: BackOffice, buyer: MatrixClient, **delivery: Any) -> str:
    placed = await office.api.post("/me/orders", office.api.acting_as(buyer.user_id), {
        "shop": office.slug, "items": [{"sku": "lamp", "quantity": 2}],
        "payment": "on_delivery",
        "delivery": delivery or {"kind": "shipping", "address": ADDRESS,
                                 "phone": "+49 40 5550123"}})
    assert placed.status == 201, placed
    return str(placed.body["id"])


async def _in_sync(client: MatrixClient, room_id: str,
                   matches: Callable[[dict[str, Any]], bool], timeout: float = 30.0
                   ) -> dict[str, Any]:
    """The first event of the room matching, as the client's /sync delivers it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = await client.sync(timeout_ms=1000)
        room = data.get("rooms", {}).get("join", {}).get(room_id, {})
        for event in room.get("timeline", {}).get("events", []):
            if matches(event):
                return event
    raise AssertionError(f"nothing matching reached {client.user_id}'s /sync in {room_id}")


async def _follow_reward_code(office: BackOffice, network: RunningNetwork,
                              buyer: MatrixClient) -> str:
    """The buyer follows the shop's channel and receives the follow reward's code by DM."""
    reward = await office.api.call("PUT", f"/shops/{office.slug}/follow-reward",
                                   office.api.acting_as(office.owner), json={
                                       "title": "10% off your first lamp", "percent_off": 10,
                                       "stock": 50, "expires_at": "2099-12-31T23:59:00+00:00"})
    assert reward.status == 200, reward
    await buyer.join(f"#shop_{office.slug}:localhost")
    shop = f"@shop_{office.slug}:localhost"
    dm = await buyer.wait_for_invite(shop)
    await buyer.join(dm)
    gift = await buyer.wait_for_message(
        dm, lambda e: e["sender"] == shop and "10% off your first lamp" in
        e.get("content", {}).get("body", ""))
    found = CODE.search(gift["content"]["body"])
    assert found, gift
    return found.group(1)


# -- every page renders for an owner, at both widths -------------------------------------------

async def test_each_page_renders_for_an_owner_at_both_widths(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    office = await _back_office(network, http)
    for width in WIDTHS:
        page = await _signed_in(browser, office, office.owner, width)
        for path, heading in (("coupons", "Coupons"), ("orders", "Orders"),
                              ("customers", "Customers"), ("settings", "Settings"),
                              ("settings/audit", "Audit log")):
            response = await page.goto(office.url(path))
            assert response is not None and response.status == 200, (path, width)
            await expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
            nav = page.get_by_role("list", name="Harbour Lamps")
            for label in ("Coupons", "Orders", "Customers", "Settings"):
                await expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
            # Nothing is wider than the screen.
            wide = await page.evaluate(WIDEST)
            assert await page.evaluate("document.documentElement.scrollWidth") <= width, \
                (path, wide)
        await page.context.close()


# -- coupons: the till -----------------------------------------------------------------------

async def test_a_code_redeemed_at_the_till_once_then_refused(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    office = await _back_office(network, http)
    buyer = await new_user(network, http, "buyer")
    code = await _follow_reward_code(office, network, buyer)
    support = await new_user(network, http, "support")
    added = await office.api.add_staff(office.slug, office.api.acting_as(office.owner),
                                       support.user_id, "support")
    assert added.status == 201, added

    page = await _signed_in(browser, office, support.user_id)
    await page.goto(office.url("coupons"))
    row = page.get_by_role("row").filter(has_text="10% off your first lamp")
    await expect(row).to_contain_text("50")  # the stock
    await page.get_by_label("The buyer's code").fill(f" {code.lower()} ")
    await page.get_by_role("button", name="Redeem").click()
    await expect(page.get_by_role("status")).to_contain_text(f"{code} redeemed")
    await expect(page.get_by_role("status")).to_contain_text(buyer.user_id)
    assert commerce_rows(network, "SELECT redeemed_by FROM coupon_code WHERE code=?",
                         code) == [(support.user_id,)]

    await page.get_by_label("The buyer's code").fill(code)
    await page.get_by_role("button", name="Redeem").click()
    await expect(page.get_by_role("alert")).to_contain_text(f"{code} was already redeemed on")
    await page.get_by_label("The buyer's code").fill("ZZZZZZZZZZ")
    await page.get_by_role("button", name="Redeem").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "ZZZZZZZZZZ is not a code of this shop.")
    await page.reload()
    row = page.get_by_role("row").filter(has_text="10% off your first lamp")
    await expect(row.locator("td[data-label=Redeemed]")).to_have_text("1")
    await expect(row.locator("td[data-label=Claimed]")).to_have_text("1")
    await _shot(page, "coupons")

    # Without JavaScript the till is a plain form answered with the whole page.
    plain = await browser.new_context(java_script_enabled=False,
                                      viewport={"width": 360, "height": 740},
                                      storage_state=await page.context.storage_state())
    no_js = await plain.new_page()
    await no_js.goto(office.url("coupons"))
    await no_js.get_by_label("The buyer's code").fill(code)
    await no_js.get_by_role("button", name="Redeem").click()
    await expect(no_js.get_by_role("alert")).to_contain_text("was already redeemed")


# -- orders: the board, shipping, the packing slip ------------------------------------------------

async def test_an_order_shipped_from_the_board_reaches_the_buyer_and_prints(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    office = await _back_office(network, http)
    buyer = await new_user(network, http, "buyer")
    order_id = await _place_order(office, buyer)
    shop = f"@shop_{office.slug}:localhost"
    dm = await buyer.wait_for_invite(shop)
    await buyer.join(dm)
    card = await buyer.wait_for_message(
        dm, lambda e: e.get("content", {}).get("org.mercato.order", {}).get("id") == order_id
        and "m.relates_to" not in e["content"])
    await buyer.sync()  # from here on, /sync brings only what is new

    page = await _signed_in(browser, office, office.owner)
    await page.goto(office.url("orders"))
    placed = page.locator("section.column", has=page.get_by_role("heading", name=re.compile(
        "^Placed")))
    order_card = placed.locator(f"#order-{order_id}")
    await expect(order_card).to_contain_text("2 × Desk lamp")
    await order_card.get_by_role("button", name=f"Confirm order {order_id}").click()
    confirmed = page.locator("section.column", has=page.get_by_role(
        "heading", name=re.compile("^Confirmed")))
    order_card = confirmed.locator(f"#order-{order_id}")
    await expect(order_card).to_be_visible()

    # A tracking link to a site the link rules refuse is refused with their sentence.
    await order_card.get_by_text("Ship…").click()
    await order_card.get_by_label("Carrier", exact=True).fill("DHL")
    await order_card.get_by_label("Tracking number").fill("JJD0099")
    await order_card.get_by_label("Tracking link").fill("https://track.evil.example/JJD0099")
    await order_card.get_by_role("button", name="Mark shipped").click()
    await expect(page.get_by_role("alert")).to_contain_text(f"Order {order_id}")
    assert commerce_rows(network, "SELECT status FROM orders WHERE id=?",
                         order_id) == [("confirmed",)]

    order_card = page.locator(f"#order-{order_id}")
    await order_card.get_by_text("Ship…").click()
    await order_card.get_by_label("Carrier", exact=True).fill("DHL")
    await order_card.get_by_label("Tracking number").fill("JJD0099")
    await order_card.get_by_label("Tracking link").fill(SHIPPED_LINK)
    await order_card.get_by_role("button", name="Mark shipped").click()
    shipped = page.locator("section.column", has=page.get_by_role(
        "heading", name=re.compile("^Shipped")))
    await expect(shipped.locator(f"#order-{order_id}")).to_contain_text("DHL JJD0099")

    edit = await _in_sync(buyer, dm, lambda e: (
        e.get("content", {}).get("m.relates_to", {}).get("event_id") == card["event_id"]
        and e["content"].get("m.new_content", {}).get("org.mercato.order", {})
        .get("status") == "shipped"))
    assert "JJD0099" in edit["content"]["m.new_content"]["body"]
    await _shot(page, "orders")

    # The packing slip: items, quantities, the address, the order and the shop, on paper.
    await shipped.locator(f"#order-{order_id}").get_by_role("link", name="Packing slip").click()
    await expect(page.get_by_role("heading", name=f"Packing slip · order {order_id}")
                 ).to_be_visible()
    await page.emulate_media(media="print")
    await expect(page.locator("header.site")).to_be_hidden()
    slip = page.locator("article.slip")
    for text in ("Harbour Lamps", ADDRESS, "Desk lamp", "lamp", order_id):
        await expect(slip).to_contain_text(text)
    await expect(slip.locator("td.num")).to_have_text("2")
    await _shot(page, "slip")
    await page.emulate_media(media="screen")

    phone = await _signed_in(browser, office, office.owner, 360)
    await phone.goto(office.url("orders"))
    await expect(phone.locator(f"#order-{order_id}")).to_be_visible()
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 360
    await _shot(phone, "orders-360")


# -- the role table through the console ---------------------------------------------------------

async def test_the_role_table_through_the_console(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    office = await _back_office(network, http)
    owner = office.api.acting_as(office.owner)
    people = {}
    for role in ("support", "analyst", "editor"):
        person = await new_user(network, http, role)
        assert (await office.api.add_staff(office.slug, owner, person.user_id, role)).status == 201
        people[role] = person.user_id
    buyer = await new_user(network, http, "buyer")
    order_id = await _place_order(office, buyer)

    # Support: redeems and moves orders, but manages no staff.
    page = await _signed_in(browser, office, people["support"])
    nav = page.get_by_role("list", name="Harbour Lamps")
    await page.goto(office.url("orders"))
    await expect(nav.get_by_role("link", name="Settings")).to_have_count(0)
    await page.locator(f"#order-{order_id}").get_by_role(
        "button", name=f"Confirm order {order_id}").click()
    await expect(page.locator("section.column", has=page.get_by_role(
        "heading", name=re.compile("^Confirmed"))).locator(f"#order-{order_id}")).to_be_visible()
    await page.goto(office.url("coupons"))
    await expect(page.get_by_role("button", name="Redeem")).to_be_visible()
    response = await page.goto(office.url("settings"))
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", name="Not open to your role")).to_be_visible()
    await expect(page.get_by_text("is support, which may not edit shop")).to_be_visible()
    # Even a form posted straight to the staff route changes nothing.
    token = await page.locator("meta[name=mercato-csrf]").get_attribute("content")
    answer = await page.request.post(office.url("settings/staff"), form={
        "csrf_token": token or "", "user_id": people["support"], "role": "owner"},
        headers={"Origin": office.base})
    assert answer.status == 403
    assert (await office.api.staff(office.slug))[people["support"]] == "support"

    # Analyst: no orders, no customers.
    page = await _signed_in(browser, office, people["analyst"])
    for path in ("orders", "customers", f"orders/{order_id}/slip"):
        response = await page.goto(office.url(path))
        assert response is not None and response.status == 403, path
    await expect(page.get_by_role("list", name="Harbour Lamps").get_by_role(
        "link", name="Orders")).to_have_count(0)
    await page.goto(office.url("coupons"))
    await expect(page.get_by_role("button", name="Redeem")).to_have_count(0)

    # Editor: no settings.
    page = await _signed_in(browser, office, people["editor"])
    response = await page.goto(office.url("settings"))
    assert response is not None and response.status == 403
    response = await page.goto(office.url("settings/audit"))
    assert response is not None and response.status == 403


# -- settings: API keys and the webhook ----------------------------------------------------------

async def test_an_api_key_shown_once_and_revoked_and_a_webhook_delivery_logged(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession,
        shop_certificate: Certificate) -> None:
    office = await _back_office(network, http)
    page = await _signed_in(browser, office, office.owner)
    await page.goto(office.url("settings"))
    keys = page.locator("#keys")
    await keys.get_by_label("New key's label").fill("till")
    await keys.get_by_label("Role").select_option("support")
    await keys.get_by_role("button", name="Create a key").click()
    key = (await page.locator("#new-key").text_content() or "").strip()
    assert key.startswith("mk_"), key
    merchant = await office.api.get("/merchant", office.api.key(key))
    assert merchant.status == 200 and merchant.body["slug"] == office.slug
    await page.goto(office.url("settings"))  # the key was in that one answer only
    await expect(page.locator("#new-key")).to_have_count(0)
    assert key not in await page.content()

    await page.locator("#keys").get_by_role("button", name="Revoke till").click()
    await expect(page.locator("#keys")).to_contain_text("revoked")
    assert (await office.api.get("/merchant", office.api.key(key))).status in (401, 403)

    receiver = await WebhookReceiver(shop_certificate).start()
    try:
        webhook = page.locator("#webhook")
        await webhook.get_by_label("Your back-end's address").fill(receiver.url)
        await webhook.get_by_role("button", name="Set the webhook").click()
        secret = (await page.locator("#new-secret").text_content() or "").strip()
        assert secret.startswith("whsec_"), secret
        receiver.secret = secret
        await page.goto(office.url("settings"))
        assert secret not in await page.content()

        buyer = await new_user(network, http, "buyer")
        order_id = await _place_order(office, buyer)
        deadline = time.monotonic() + 30
        while order_id not in str(receiver.processed):
            assert time.monotonic() < deadline, "the webhook never arrived"
            await asyncio.sleep(0.3)
        await page.reload()
        row = page.locator("#webhook table.deliveries tr").filter(has_text="order.placed")
        await expect(row).to_contain_text("delivered")
        await expect(row).to_contain_text(order_id)
        await _shot(page, "settings")
        await row.get_by_role("button", name=re.compile("^Resend")).click()
        await expect(page.locator("#webhook")).to_contain_text("Saved.")
        deadline = time.monotonic() + 30
        while receiver.arrivals.count(receiver.processed[0]["id"]) < 2:
            assert time.monotonic() < deadline, "the resent event never arrived"
            await asyncio.sleep(0.3)
        assert receiver.bad_signatures == []
    finally:
        await receiver.stop()


# -- customers, escaping and CSRF --------------------------------------------------------------

async def test_a_buyers_message_is_shown_as_text_with_a_link_to_the_thread(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    office = await _back_office(network, http)
    shop = f"@shop_{office.slug}:localhost"
    staff_room = (await office.api.shop(office.slug))["staff_room_id"]
    buyer = await new_user(network, http, "buyer")
    dm = await buyer.create_dm(shop)
    await buyer.wait_for_message(dm, joined(shop))
    said = 'Is it <b>bright</b>? <img src=x onerror="alert(1)"> & "warm"'
    await buyer.send_text(dm, said)
    deadline = time.monotonic() + 30
    while not commerce_rows(network, "SELECT 1 FROM support_message WHERE dm_room_id=?", dm):
        assert time.monotonic() < deadline, "the message never reached the staff room"
        await asyncio.sleep(0.3)

    page = await _signed_in(browser, office, office.owner)
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await page.goto(office.url("customers"))
    conversation = page.locator("ul.conversations > li").filter(has_text=buyer.user_id)
    await expect(conversation.locator(".last-message")).to_have_text(f"Buyer: {said}")
    assert await conversation.locator("img, b").count() == 0 and dialogs == []
    link = await conversation.get_by_role("link", name="Open in the staff room").get_attribute(
        "href")
    assert link is not None and link.startswith("https://matrix.to/#/")
    assert staff_room.replace("!", "%21").replace(":", "%3A") in link
    await _shot(page, "customers")

    # A POST without the CSRF token changes nothing.
    answer = await page.request.post(office.url("settings/profile"), form={
        "name": "Hijacked", "description": "", "website": ""},
        headers={"Origin": office.base})
    assert answer.status == 403 and "This form has expired" in await answer.text()
    assert (await office.api.shop(office.slug))["name"] == "Harbour Lamps"

