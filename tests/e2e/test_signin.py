"""Signing in to Mercato's web pages with a Matrix account: real Chromium, real Synapse.

The one-time link arrives by DM from @mercato in the user's own client; an OpenID token
made by Synapse signs in through the widget route (and inside a widget frame, as Element
would show the storefront); used, expired and forged credentials and CSRF-less POSTs are
refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, expect

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user

LINK = re.compile(r"(https?://\S+/web/signin/link\?\S+)")


def signin_url(network: RunningNetwork, next_path: str = "/web/signin") -> str:
    return f"{network.config.commerce.site_url}/web/signin?next={quote(next_path)}"


async def link_from_dm(user: MatrixClient, bot: str) -> str:
    room_id = await user.wait_for_invite(bot)
    await user.join(room_id)
    event = await user.wait_for_message(
        room_id, lambda e: e.get("sender") == bot and "/web/signin/link" in
        e.get("content", {}).get("body", ""))
    found = LINK.search(event["content"]["body"])
    assert found, event
    return found.group(1)


async def ask_for_link(page: Page, network: RunningNetwork, user: MatrixClient) -> None:
    await page.goto(signin_url(network))
    await page.get_by_label("Your Matrix ID").fill(user.user_id)
    await page.get_by_role("button", name="Send me a sign-in link").click()
    await expect(page.get_by_role("heading", name="Check your chats")).to_be_visible()


async def session_cookie(context: BrowserContext) -> dict[str, Any]:
    cookies = [c for c in await context.cookies() if c["name"] == "mercato_session"]
    assert len(cookies) == 1, cookies
    return dict(cookies[0])


async def test_a_link_by_dm_signs_in_once_and_sign_out_ends_it(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    user = await new_user(network, http, "webbuyer")
    bot = network.config.user_id(network.config.commerce.bot_localpart)
    context = await browser.new_context(viewport={"width": 360, "height": 740})
    page = await context.new_page()
    await ask_for_link(page, network, user)
    link = await link_from_dm(user, bot)

    await page.goto(link)
    await expect(page.get_by_role("heading", name=f"Sign in as {user.user_id}")).to_be_visible()
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"Signed in as {user.user_id}", exact=True)).to_be_visible()
    cookie = await session_cookie(context)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["secure"] == network.config.commerce.site_url.startswith("https://")
    rows = network.rows("commerce", "SELECT id_hash, user_id FROM web_session WHERE user_id = ?",
                        user.user_id)
    assert len(rows) == 1 and rows[0][0] != cookie["value"]  # only a hash is stored

    # The same link again, in another browser: refused, and nobody is signed in there.
    other = await browser.new_context()
    other_page = await other.new_page()
    response = await other_page.goto(link)
    assert response is not None and response.status == 410
    await expect(other_page.get_by_role("heading", name="This sign-in link was used already")
                 ).to_be_visible()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    assert not [c for c in await context.cookies() if c["name"] == "mercato_session"]
    assert not network.rows("commerce", "SELECT 1 FROM web_session WHERE user_id = ?",
                            user.user_id)
    await context.close()
    await other.close()


async def test_an_expired_link_is_refused(browser: Browser, network: RunningNetwork,
                                          http: aiohttp.ClientSession, api: Any) -> None:
    user = await new_user(network, http, "late")
    bot = network.config.user_id(network.config.commerce.bot_localpart)
    context = await browser.new_context()
    page = await context.new_page()
    await ask_for_link(page, network, user)
    link = await link_from_dm(user, bot)
    await _expire_links(network, user.user_id)
    response = await page.goto(link)
    assert response is not None and response.status == 410
    await expect(page.get_by_role("heading", name="This sign-in link has expired")).to_be_visible()
    assert not [c for c in await context.cookies() if c["name"] == "mercato_session"]
    await context.close()


async def _expire_links(network: RunningNetwork, user_id: str) -> None:
    from appservices.commerce.db.upgrade import upgrade_table
    from mercato.db import open_database

    db = open_database(network.config.database_url("commerce"), upgrade_table, "commerce")
    await db.start()
    try:
        await db.execute("UPDATE web_login_token SET expires_at = 0 WHERE user_id = $1", user_id)
    finally:
        await db.stop()


async def test_a_post_without_csrf_token_is_refused_and_changes_nothing(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    user = await new_user(network, http, "nocsrf")
    url = f"{network.commerce_url}/web/signin"
    async with http.post(url, data={"matrix_id": user.user_id, "next": "/"}) as resp:
        assert resp.status == 403
        assert "Nothing was changed" in await resp.text()
    assert not network.rows("commerce", "SELECT 1 FROM web_login_token WHERE user_id = ?",
                            user.user_id)


async def openid_token(user: MatrixClient) -> dict[str, Any]:
    return await user.request(
        "POST", f"/_matrix/client/v3/user/{quote(user.user_id)}/openid/request_token", {})


async def post_openid(http: aiohttp.ClientSession, network: RunningNetwork,
                      token: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    """POST the token as the widget script does: with the page's CSRF token and cookie."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.get(f"{network.commerce_url}/web/signin") as page:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert csrf
        async with browser.post(f"{network.commerce_url}/web/signin/openid", data={
                "csrf_token": csrf.group(1), "access_token": token["access_token"],
                "matrix_server_name": token["matrix_server_name"]}) as resp:
            cookie = resp.headers.get("Set-Cookie", "")
            return resp.status, await resp.json(content_type=None), cookie


async def test_a_real_openid_token_from_synapse_signs_in(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    user = await new_user(network, http, "widget")
    status, answer, cookie = await post_openid(http, network, await openid_token(user))
    assert status == 200 and answer == {"user_id": user.user_id}
    assert "mercato_session=" in cookie and "HttpOnly" in cookie
    forged = {"access_token": "not-a-token", "matrix_server_name": "localhost"}
    status, answer, cookie = await post_openid(http, network, forged)
    assert status == 401 and "did not accept" in answer["error"] and not cookie
    # A real token presented as another server's: that server does not know it.
    mismatched = {**await openid_token(user), "matrix_server_name": "localhost:1"}
    status, answer, _ = await post_openid(http, network, mismatched)
    assert status in (401, 502) and "error" in answer


@pytest.fixture
async def widget_host(network: RunningNetwork) -> AsyncIterator[str]:
    """A stand-in for Element on another port of localhost: it frames the sign-in page as a
    widget and answers the widget API (capabilities, versions, get_openid) with a token
    the test puts in `window.openidToken`."""
    page_html = """<!doctype html><html><body><iframe id="w" width="400" height="600"></iframe>
<script>
const frame = document.getElementById("w");
const widgetOrigin = new URL(window.widgetUrl || location.hash.slice(1)).origin;
window.addEventListener("message", (ev) => {
  const msg = ev.data;
  if (ev.origin !== widgetOrigin || !msg || msg.api !== "fromWidget" || msg.response) return;
  let response = {};
  if (msg.action === "supported_api_versions") response = {supported_versions: ["0.0.1", "0.0.2"]};
  if (msg.action === "get_openid") response = Object.assign({state: "allowed"}, window.openidToken);
  frame.contentWindow.postMessage(Object.assign({}, msg, {response}), widgetOrigin);
});
frame.addEventListener("load", () => {
  frame.contentWindow.postMessage({api: "toWidget", widgetId: "storefront", requestId: "caps1",
                                   action: "capabilities", data: {}}, widgetOrigin);
});
frame.src = location.hash.slice(1);
</script></body></html>"""

    async def host(_: web.Request) -> web.Response:
        return web.Response(text=page_html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", host)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "localhost", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://localhost:{port}/"
    await runner.cleanup()


async def test_inside_a_widget_the_page_signs_in_by_openid(
        browser: Browser, network: RunningNetwork, http: aiohttp.ClientSession,
        widget_host: str) -> None:
    user = await new_user(network, http, "element")
    token = await openid_token(user)
    widget_url = (f"{network.config.commerce.site_url}/web/signin?widgetId=storefront&"
                  f"parentUrl={quote(widget_host, safe='')}")
    context = await browser.new_context()
    page = await context.new_page()
    await page.add_init_script(f"window.openidToken = {json.dumps(token)};")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    await page.goto(f"{widget_host}#{widget_url}")
    frame = page.frame_locator("#w")
    signed_in = frame.get_by_text(f"Signed in as {user.user_id}", exact=True)
    try:
        await expect(signed_in).to_be_visible(timeout=20000)
    except AssertionError:
        raise AssertionError(f"{problems}; {[f.url for f in page.frames]}") from None
    await context.close()
