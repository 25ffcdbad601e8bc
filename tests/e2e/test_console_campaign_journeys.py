"""The console's campaign journeys in Chromium at 360 and 1280 px, on the real network: a post
composed and scheduled for a time in the shop's timezone arrives then in a follower's /sync,
with exactly the card the live preview showed; a cancelled one never arrives. And an editor
works on the catalog and campaigns but not on the shop's settings."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from mercato_ops.testnet import RunningNetwork
from tests.e2e.console_helpers import WIDTHS, console_shop, problems, signed_in
from tests.integration.client import MatrixClient
from tests.integration.commerce_api import new_user

TOKYO = ZoneInfo("Asia/Tokyo")  # neither UTC nor the machine's zone


async def posts_in_sync(client: MatrixClient, room_id: str, shop: str,
                        until: float) -> list[dict[str, Any]]:
    """The shop's posts the follower's /sync brings in the room before `until` (monotonic),
    returning as soon as one has come."""
    posts: list[dict[str, Any]] = []
    while time.monotonic() < until and not posts:
        sync = await client.sync(timeout_ms=1000)
        events = sync.get("rooms", {}).get("join", {}).get(room_id, {}).get(
            "timeline", {}).get("events", [])
        posts += [e for e in events if e["sender"] == shop and "org.mercato.post" in
                  e.get("content", {})]
    return posts


async def same_html(page: Page, html: str) -> str:
    """`html` as the browser parses and writes it back, to compare with a page's markup."""
    return str(await page.evaluate(
        "html => { const t = document.createElement('template'); t.innerHTML = html;"
        " return t.innerHTML; }", html))


async def next_minute_soon() -> datetime:
    """The next full minute in Tokyo, once it is 15 to 20 seconds away (the composer
    schedules to the minute)."""
    while not 40 <= datetime.now(TOKYO).second <= 45:
        await asyncio.sleep(0.5)
    return (datetime.now(TOKYO) + timedelta(minutes=1)).replace(second=0, microsecond=0)


async def compose(page: Page, kind: str, fields: dict[str, str], at: datetime) -> None:
    await page.locator("#kind").select_option(kind)
    for name, value in fields.items():
        await page.locator(f"#{name}").fill(value)
    await expect(page.locator("#preview .card-preview")).to_contain_text(fields["title"])
    await page.locator("#composer #at").fill(f"{at:%Y-%m-%dT%H:%M}")


@pytest.mark.parametrize("width", WIDTHS)
async def test_a_scheduled_post_arrives_as_previewed_and_a_cancelled_one_never(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession,
        width: int) -> None:
    shop = await console_shop(network, http)
    owner = shop.api.acting_as(shop.staff["owner"])
    hours = await shop.api.patch(f"/shops/{shop.slug}", owner,
                                 {"opening_hours": {"timezone": "Asia/Tokyo"}})
    assert hours.status == 200, hours
    shop_mxid = f"@shop_{shop.slug}:localhost"
    follower = await new_user(network, http, "follower")
    room_id = await follower.join(f"#shop_{shop.slug}:localhost")
    await follower.sync()  # from here on, /sync brings only what is new

    context, page = await signed_in(browser, shop, "owner", width=width)
    seen = problems(page)
    await page.goto(shop.url("campaigns"))
    await expect(page.locator("label[for=at]")).to_contain_text("Asia/Tokyo")
    at = await next_minute_soon()
    shown_at = f"{at:%Y-%m-%d %H:%M} (Asia/Tokyo)"

    # One to cancel, scheduled for the same minute.
    await compose(page, "text", {"title": "Never <b>sent</b>", "text": "Cancelled"}, at)
    await page.locator("#composer").get_by_role("button", name="Schedule").click()
    await expect(page.locator("dl.facts")).to_contain_text(shown_at)
    await page.get_by_role("button", name="Cancel this campaign").click()
    await expect(page.locator("dl.facts dd").nth(1)).to_have_text("cancelled")

    await page.goto(shop.url("campaigns"))
    await compose(page, "product", {"title": "Oolong <i>first flush</i>",
                                    "text": "Picked in April & rolled by hand",
                                    "price": "14.5", "currency": "EUR"}, at)
    preview = await page.locator("#preview .card-preview").inner_html()
    await page.locator("#composer").get_by_role("button", name="Schedule").click()
    await expect(page.locator("dl.facts dd").nth(1)).to_have_text("scheduled")
    await expect(page.locator("dl.facts")).to_contain_text(shown_at)

    posts = await posts_in_sync(follower, room_id, shop_mxid, time.monotonic() + 60)
    assert len(posts) == 1, posts
    [post] = posts
    assert post["origin_server_ts"] >= at.timestamp() * 1000 - 1000, "sent before its time"
    content = post["content"]
    assert content["org.mercato.post"]["price"] == {"amount": "14.50", "currency": "EUR"}
    assert await same_html(page, content["formatted_body"]) == preview
    assert "Oolong &lt;i&gt;first flush&lt;/i&gt;" in content["formatted_body"]
    # The cancelled post was due at the same minute: nothing more comes.
    assert await posts_in_sync(follower, room_id, shop_mxid, time.monotonic() + 5) == []
    timeline = await follower.messages(room_id)
    assert not any("Never" in e.get("content", {}).get("body", "") for e in timeline)
    assert seen == [], seen
    await context.close()


async def test_an_editor_works_on_catalog_and_campaigns_but_not_settings(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    shop = await console_shop(network, http)
    context, page = await signed_in(browser, shop, "owner")
    await page.goto(shop.url("dashboard"))
    owner_sections = await page.locator("ul.sections a").all_inner_texts()
    await context.close()
    assert {"Dashboard", "Catalog", "Campaigns"} <= set(owner_sections)

    for width in WIDTHS:
        context, page = await signed_in(browser, shop, "editor", width=width)
        seen = problems(page)
        await page.goto(shop.url())
        sections = page.locator("ul.sections")
        for label in ("Catalog", "Campaigns"):
            await sections.get_by_role("link", name=label).click()
            await expect(page.get_by_role("heading", level=1)).to_have_text(label)
        await expect(sections.get_by_role("link", name="Settings")).to_have_count(0)
        csrf = await page.locator("meta[name=mercato-csrf]").get_attribute("content") or ""
        if "Settings" in owner_sections:
            for path in ("settings", "settings/audit"):
                answer = await page.goto(shop.url(path))
                assert answer is not None and answer.status == 403, path
                await expect(page.get_by_role("heading", name="Not open to your role")
                             ).to_be_visible()
                await expect(page.get_by_role("alert")).to_contain_text("is editor")
            before = (await shop.api.shop(shop.slug))["name"]
            answer = await page.request.post(shop.url("settings/profile"), form={
                "csrf_token": csrf, "name": "Taken over"}, headers={"Origin": shop.base})
            assert answer.status in (403, 404)
            assert (await shop.api.shop(shop.slug))["name"] == before
        else:
            answer = await page.goto(shop.url("settings"))
            assert answer is not None and answer.status == 404
        seen[:] = [s for s in seen if "status of 403" not in s and "status of 404" not in s]
        assert seen == [], seen
        await context.close()
