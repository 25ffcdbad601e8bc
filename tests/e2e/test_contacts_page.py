"""The in-browser import page in real Chromium: the file is read and hashed in the page,
only hashes leave it, and the opted-in contact is shown. Also the invite page, without
script. The bridge's HTTP app runs in-process (no homeserver is needed for either page).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Request, Route, expect

from bridges.contacts.api import ApiContext, add_api_routes
from bridges.contacts.db import store
from bridges.contacts.db.upgrade import upgrade_table
from bridges.contacts.discovery import Discovery
from bridges.contacts.hashing import IdentifierHasher
from bridges.contacts.importers import Medium
from bridges.contacts.policy import Limits
from mercato.config import parse_config
from mercato.db import open_database

PEPPER = "browserpepper1"
KARI = "@kari:localhost"
ME = "@me:localhost"
# Sentinels: none of these may appear in any request the page makes.
KARI_PHONE_TYPED, KARI_E164 = "912 34 567", "+4791234567"
STRANGER_EMAIL = "sentinel.stranger@example.net"
STRANGER_PHONE_TYPED = "+47 400 11 223"
KARI_EMAIL_TYPED = "Kari.Found@Example.NO"
SENTINELS = ["91234567", "4791234567", "912 34 567", "912%2034%20567", "sentinel.stranger",
             "40011223", "400 11 223", "kari.found", "Kari.Found", "Kari Nordmann",
             "Stranger Person", "example.net"]
VCARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Kari Nordmann\r\n"
    f"TEL;TYPE=CELL:{KARI_PHONE_TYPED}\r\nEND:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Stranger Person\r\n"
    f"TEL:{STRANGER_PHONE_TYPED}\r\nEMAIL:{STRANGER_EMAIL}\r\nEND:VCARD\r\n"
)
CSV = f"name,phone,email\nKari Nordmann,,{KARI_EMAIL_TYPED}\nStranger Person,,{STRANGER_EMAIL}\n"
TOKEN = "browser-test-token-0123456789abcdef"


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[str]:
    config = parse_config({"contacts": {"lookup_pepper": PEPPER, "default_region": "NO"}},
                          base_dir=tmp_path)
    db = open_database(f"sqlite:{tmp_path / 'contacts.db'}", upgrade_table, "contacts")
    await db.start()
    discovery = Discovery(db, IdentifierHasher(config.contacts.hmac_secret, PEPPER),
                          Limits.of(config.contacts))
    await discovery.opt_in(KARI, Medium.PHONE, KARI_E164)
    await discovery.opt_in(KARI, Medium.EMAIL, KARI_EMAIL_TYPED.lower())
    await store.add_token(db, hashlib.sha256(TOKEN.encode()).hexdigest(), ME,
                          expires_at=store.now_ms() + 3600_000)
    await store.add_invite(db, "invitecode1", ME, "!room:localhost", None, None)
    session = aiohttp.ClientSession()
    app = web.Application()
    add_api_routes(app, ApiContext(db, discovery, config, lambda: session))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()
        await session.close()
        await db.stop()


async def _run_import(browser: Browser, base: str, *, file: bytes | None = None,
                      pasted: str | None = None) -> tuple[list[dict[str, Any]], Any, Any]:
    context = await browser.new_context()
    seen: list[dict[str, Any]] = []

    async def record(route: Route, request: Request) -> None:
        seen.append({"url": request.url, "method": request.method,
                     "headers": await request.all_headers(),
                     "body": request.post_data_buffer or b""})
        await route.continue_()

    await context.route("**/*", record)  # every request of every page in this context
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{base}/import#token={TOKEN}")
    await expect(page.locator("#token")).to_have_value(TOKEN)
    assert "token" not in page.url  # the fragment is cleared from the address bar
    if file is not None:
        await page.set_input_files("#file", files=[{
            "name": "contacts.vcf", "mimeType": "text/vcard", "buffer": file}])
    if pasted is not None:
        await page.fill("#pasted", pasted)
    await page.click("#find")
    await expect(page.locator("#status")).to_contain_text("of them on Mercato", timeout=15000)
    return seen, page, context


def _assert_only_hashes_left(seen: list[dict[str, Any]]) -> None:
    assert any(r["url"].endswith("/_matrix/identity/v2/lookup") for r in seen), seen
    for request in seen:
        blob = (request["url"] + repr(request["headers"])).encode() + request["body"]
        for sentinel in SENTINELS:
            assert sentinel.encode() not in blob, (sentinel, request["url"])
        assert request["url"].startswith("http://127.0.0.1:")  # nothing else was contacted


async def test_a_vcard_is_hashed_in_the_browser_and_the_match_shown(
        browser: Browser, bridge: str) -> None:
    seen, page, context = await _run_import(browser, bridge, file=VCARD.encode())
    try:
        _assert_only_hashes_left(seen)
        lookup = next(r for r in seen if r["url"].endswith("/lookup"))
        assert b'"algorithm":"sha256"' in lookup["body"] and PEPPER.encode() in lookup["body"]
        matches = page.locator("#matches li")
        await expect(matches).to_have_count(1)
        await expect(matches.first).to_contain_text(KARI)
        await expect(matches.first).to_contain_text("Kari Nordmann")  # shown, never sent
        href = await matches.first.locator("a").get_attribute("href")
        assert href == "https://matrix.to/#/@kari:localhost"
        await expect(page.locator("#status")).to_contain_text("1 of them on Mercato")
    finally:
        await context.close()


async def test_pasted_csv_finds_by_email(browser: Browser, bridge: str) -> None:
    seen, page, context = await _run_import(browser, bridge, pasted=CSV)
    try:
        _assert_only_hashes_left(seen)
        await expect(page.locator("#matches li")).to_have_count(1)
        await expect(page.locator("#matches li").first).to_contain_text(KARI)
    finally:
        await context.close()


async def test_the_invite_page_works_without_script(browser: Browser, bridge: str) -> None:
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    try:
        resp = await page.goto(f"{bridge}/invite/invitecode1")
        assert resp is not None and resp.status == 200
        await expect(page.locator("h1")).to_contain_text(f"{ME} invites you")
        await expect(page.locator("#inviter-link")).to_have_attribute(
            "href", "https://matrix.to/#/@me:localhost")
        box = await page.locator("svg.qr").bounding_box()
        assert box is not None and box["width"] > 100
        assert re.search(r"/invite/invitecode1", await page.content())
    finally:
        await context.close()
