"""The in-browser import page in real Chromium: the file is read and hashed in the page,
only hashes leave it, and the opted-in contact is shown — also from a Chinese Excel export
in GBK and a French Outlook export in Windows-1252, with the columns read named. Also the
invite page, without script. The bridge's HTTP app runs in-process (no homeserver is
needed for either page).
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
CORPUS = Path(__file__).parent.parent / "unit" / "fixtures" / "contacts"
# In the corpus' Chinese and French exports (zh-excel-gbk.csv, fr-outlook-cp1252.csv).
ZHANG, ZHANG_E164 = "@zhangwei:localhost", "+8613800138000"
FRANCOIS, FRANCOIS_EMAIL = "@francois:localhost", "f.dupre@example.fr"
EXPORT_SENTINELS = ["13800138000", "138 0013", "zhangwei@", "wangfang", "13512345678",
                    "f.dupre", "612345678", "06 12 34", "Dupr", "Fran", "example.cn",
                    "example.fr", "张伟", "%E5%BC%A0", "\\u5f20"]


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
    await discovery.opt_in(ZHANG, Medium.PHONE, ZHANG_E164)
    await discovery.opt_in(FRANCOIS, Medium.EMAIL, FRANCOIS_EMAIL)
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
                      pasted: str | None = None, filename: str = "contacts.vcf",
                      country: str | None = None, width: int | None = None
                      ) -> tuple[list[dict[str, Any]], Any, Any]:
    size = {"width": width, "height": 800} if width else None
    context = await browser.new_context(viewport=size)  # type: ignore[arg-type]
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
            "name": filename, "mimeType": "text/vcard", "buffer": file}])
    if pasted is not None:
        await page.fill("#pasted", pasted)
    if country is not None:
        await page.fill("#country", country)
    await page.click("#find")
    await expect(page.locator("#status")).to_contain_text("of them on Mercato", timeout=15000)
    assert not errors, errors  # no script error, no CSP refusal
    return seen, page, context


def _assert_only_hashes_left(seen: list[dict[str, Any]],
                             sentinels: list[str] = SENTINELS) -> None:
    assert any(r["url"].endswith("/_matrix/identity/v2/lookup") for r in seen), seen
    for request in seen:
        blob = (request["url"] + repr(request["headers"])).encode() + request["body"]
        for sentinel in sentinels:
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


async def test_a_chinese_excel_export_in_gbk_is_read_in_the_page(
        browser: Browser, bridge: str, tmp_path: Path) -> None:
    """The issue's case: GBK, header 姓名,手机,邮箱 — refused by the page before."""
    seen, page, context = await _run_import(
        browser, bridge, file=(CORPUS / "zh-excel-gbk.csv").read_bytes(),
        filename="通讯录.csv", country="86", width=360)
    try:
        _assert_only_hashes_left(seen, SENTINELS + EXPORT_SENTINELS)
        matches = page.locator("#matches li")
        await expect(matches).to_have_count(1)
        await expect(matches.first).to_contain_text(ZHANG)
        await expect(matches.first).to_contain_text("your contact “张伟”")
        await expect(page.locator("#status")).to_contain_text(
            "Read 2 contacts (CSV, GBK/GB18030; 4 numbers and addresses): 1 of them on Mercato.")
        await expect(page.locator("#columns")).to_have_text(
            "Read names from 姓名, phone numbers from 手机, emails from 邮箱.")
        # Readable on a phone: nothing wider than the screen.
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        await page.screenshot(path=str(tmp_path / "import-zh-360.png"), full_page=True)
    finally:
        await context.close()


async def test_a_french_outlook_export_in_windows_1252_is_read_in_the_page(
        browser: Browser, bridge: str) -> None:
    seen, page, context = await _run_import(
        browser, bridge, file=(CORPUS / "fr-outlook-cp1252.csv").read_bytes(),
        filename="contacts.csv", country="33")
    try:
        _assert_only_hashes_left(seen, SENTINELS + EXPORT_SENTINELS)
        matches = page.locator("#matches li")
        await expect(matches).to_have_count(1)
        await expect(matches.first).to_contain_text(FRANCOIS)
        await expect(matches.first).to_contain_text("your contact “François Dupré”")
        await expect(page.locator("#status")).to_contain_text("(Outlook CSV, Windows-1252;")
        await expect(page.locator("#columns")).to_have_text(
            "Read names from Prénom and Nom; phone numbers from Téléphone mobile; emails from "
            "Adresse de messagerie.")  # the fax column (Télécopie) is not a phone
    finally:
        await context.close()


async def test_a_csv_without_a_phone_or_email_column_is_refused_in_the_page(
        browser: Browser, bridge: str) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(f"{bridge}/import#token={TOKEN}")
        addresses = "姓名,地址\n张伟,北京\n".encode("gbk")  # names and street addresses only
        await page.set_input_files("#file", files=[{
            "name": "x.csv", "mimeType": "text/csv", "buffer": addresses}])
        await page.click("#find")
        await expect(page.locator("#status")).to_contain_text("names no phone or email column")
        await expect(page.locator("#results")).to_be_hidden()
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
