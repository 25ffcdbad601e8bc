"""Web sign-in without a homeserver: the rules (hashes, expiry, `next=`, CSRF, CSP, cookie
flags) as pure functions, and the sign-in routes over HTTP on SQLite and PostgreSQL with a
stand-in for the homeserver's OpenID check. The real network: tests/e2e/test_signin.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from appservices.commerce.config import CommerceConfig
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.http import ApiContext
from appservices.commerce.shops.storage import now_ms
from appservices.commerce.web import page, rules, sessions
from appservices.commerce.web import storage as rows
from appservices.commerce.web.dm import LinkSender
from appservices.commerce.web.signin import add_signin_routes, matrix_id
from mercato.config import parse_config
from mercato.db import Database, open_database
from mercato.matrix.openid import user_of_server

ALICE = "@alice:localhost"

# -- pure rules ------------------------------------------------------------------------------


def test_secrets_are_random_and_stored_as_hashes() -> None:
    one, two = rules.new_secret(), rules.new_secret()
    assert one != two and len(one) >= 43
    assert rules.hash_secret(one) == rules.hash_secret(one) != rules.hash_secret(two)
    assert one not in rules.hash_secret(one)


def test_session_ends_after_a_week_idle_or_a_month_in_all() -> None:
    day = rules.DAY_MS
    assert rules.session_alive(0, 6 * day, 12 * day)
    assert not rules.session_alive(0, 0, 7 * day)
    assert not rules.session_alive(0, 29 * day, 30 * day)
    assert rules.session_alive(0, 29 * day, 30 * day - 1)


@pytest.mark.parametrize("target,expected", [
    ("/s/tea", "/s/tea"), ("/p/tea/jasmine?q=1#x", "/p/tea/jasmine?q=1#x"),
    ("https://evil.example/", "/"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
    ("\\\\evil.example", "/"), ("javascript:alert(1)", "/"), ("", "/"), (None, "/"),
    ("/\tevil", "/"), ("s/tea", "/"), ("/" + "a" * 3000, "/"),
])
def test_next_is_only_ever_a_path_on_this_site(target: str | None, expected: str) -> None:
    assert rules.safe_next(target) == expected


def test_csrf_token_is_bound_to_the_browser_and_the_session() -> None:
    key = rules.csrf_key("a-service-secret-of-some-length")
    token = rules.csrf_token(key, "browser", "session")
    assert rules.csrf_matches(key, "browser", "session", token)
    assert not rules.csrf_matches(key, "browser", None, token)
    assert not rules.csrf_matches(key, "other-browser", "session", token)
    assert not rules.csrf_matches(rules.csrf_key("another-secret-of-length"), "browser",
                                  "session", token)
    assert not rules.csrf_matches(key, None, "session", token)
    assert not rules.csrf_matches(key, "browser", "session", "")


def test_posts_from_another_origin_are_refused() -> None:
    here = ("https://shop.example",)
    assert rules.same_origin_request("https://shop.example", None, here)
    assert not rules.same_origin_request("https://evil.example", None, here)
    assert not rules.same_origin_request("null", None, here)
    assert rules.same_origin_request(None, "https://shop.example/s/tea", here)
    assert not rules.same_origin_request(None, "https://evil.example/s/tea", here)
    assert rules.same_origin_request(None, None, here)  # the token decides then


def test_cookie_flags() -> None:
    assert rules.session_cookie_flags("https://shop.example") == rules.CookieFlags(
        secure=True, samesite="Lax", partitioned=False)
    assert rules.session_cookie_flags("http://localhost:8090") == rules.CookieFlags(
        secure=False, samesite="Lax", partitioned=False)
    # In a client's widget frame on https: the only cookie a cross-site frame keeps.
    assert rules.session_cookie_flags("https://shop.example", embedded=True) == \
        rules.CookieFlags(secure=True, samesite="None", partitioned=True)


def test_content_security_policy_allows_nothing_from_elsewhere() -> None:
    csp = page.content_security_policy("n0nce", embeddable=False)
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self' 'nonce-n0nce'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    assert directives["form-action"] == "'self'"
    widget = page.content_security_policy("n", embeddable=True,
                                          img_sources=["https://media.example"])
    assert "frame-ancestors *" in widget and "img-src 'self' data: https://media.example" in widget


def test_matrix_ids_typed_by_people() -> None:
    assert matrix_id(" @Alice:example.org ") == "@alice:example.org"
    assert matrix_id("alice:example.org") == "@alice:example.org"
    assert matrix_id("alice") is None
    assert matrix_id("@al ice:example.org") is None
    assert user_of_server("@alice:example.org", "example.org")
    assert not user_of_server("@alice:evil.example", "example.org")
    assert not user_of_server("@alice:example.org:8448", "example.org")
    assert not user_of_server("alice:example.org", "example.org")


# -- over HTTP ---------------------------------------------------------------------------------


class RecordedLinks(LinkSender):
    """Keeps the links instead of sending them by DM (the e2e tests read the real DM)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    @property
    def appservice(self) -> Any:  # type: ignore[override]
        return type("Bot", (), {"bot_mxid": "@mercato:localhost"})()

    async def send(self, user_id: str, url: str, token_hash: str) -> None:
        self.sent.append((user_id, url))


@pytest.fixture
async def homeserver() -> AsyncIterator[TestServer]:
    """Answers OpenID userinfo as Synapse's federation API does, for two tokens."""
    async def userinfo(request: web.Request) -> web.Response:
        token = request.query.get("access_token")
        if token == "alice-token":
            return web.json_response({"sub": ALICE})
        if token == "someone-elses":  # a server vouching for another server's user
            return web.json_response({"sub": "@mallory:elsewhere.example"})
        return web.json_response({"errcode": "M_UNKNOWN_TOKEN", "error": "?"}, status=401)

    app = web.Application()
    app.router.add_get("/_matrix/federation/v1/openid/userinfo", userinfo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    yield database
    await database.stop()


@pytest.fixture
async def sender() -> RecordedLinks:
    return RecordedLinks()


@pytest.fixture
async def client(tmp_path: Path, homeserver: TestServer, db: Database,
                 sender: RecordedLinks) -> AsyncIterator[TestClient]:
    config = parse_config({"synapse": {"port": homeserver.port}}, base_dir=tmp_path)
    app = web.Application()
    app[ContextKey] = ApiContext(db=db, config=CommerceConfig.of(config), matrix=None)  # type: ignore[arg-type]
    add_signin_routes(app, config, sender)

    async def private(request: web.Request) -> web.Response:
        user = await sessions.require_user(request)
        return await page.render(request, "error.html.j2", title="Private", message=user)

    app.router.add_get("/private", private)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


from appservices.commerce.http import CONTEXT as ContextKey  # noqa: E402


async def csrf_of(client: TestClient, path: str = "/web/signin") -> str:
    html = await (await client.get(path)).text()
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def ask_link(client: TestClient, sender: RecordedLinks, who: str = ALICE,
                   next_path: str = "/private") -> str:
    resp = await client.post("/web/signin", data={
        "csrf_token": await csrf_of(client), "matrix_id": who, "next": next_path})
    assert resp.status == 200, await resp.text()
    assert "Check your chats" in await resp.text()
    for _ in range(50):  # sent after answering
        if sender.sent:
            break
        await __import__("asyncio").sleep(0.01)
    user, url = sender.sent.pop()
    assert user == who
    return url.split("/web/signin/link", 1)[1]


async def open_link(client: TestClient, link: str) -> Any:
    resp = await client.get("/web/signin/link" + link)
    if resp.status != 200:
        return resp
    html = await resp.text()
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    nxt = re.search(r'name="next" value="([^"]*)"', html).group(1)  # type: ignore[union-attr]
    return await client.post("/web/signin/link", allow_redirects=False, data={
        "csrf_token": await csrf_of(client, "/web/signin/link" + link), "token": token,
        "next": nxt})


async def test_a_link_signs_in_once_and_comes_back_to_the_page(
        client: TestClient, sender: RecordedLinks, db: Database) -> None:
    resp = await client.get("/private", allow_redirects=False)
    assert resp.status == 303 and unquote(resp.headers["Location"]) == "/web/signin?next=/private"
    link = await ask_link(client, sender)
    signed_in = await open_link(client, link)
    assert signed_in.status == 303 and signed_in.headers["Location"] == "/private"
    cookie = signed_in.headers["Set-Cookie"]
    assert "mercato_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    raw = signed_in.cookies["mercato_session"].value
    assert await rows.get_session(db, raw) is None  # only its hash is kept
    assert (await rows.get_session(db, rules.hash_secret(raw))).user_id == ALICE  # type: ignore[union-attr]
    page_html = await (await client.get("/private")).text()
    assert f"Signed in as <strong>{ALICE}</strong>" in page_html
    again = await open_link(client, link)
    assert again.status == 410 and "used already" in await again.text()


async def test_an_expired_link_is_refused(client: TestClient, sender: RecordedLinks,
                                          db: Database) -> None:
    link = await ask_link(client, sender)
    await db.execute("UPDATE web_login_token SET expires_at = $1", now_ms() - 1)
    resp = await open_link(client, link)
    assert resp.status == 410 and "expired" in await resp.text()
    assert (await client.get("/private", allow_redirects=False)).status == 303


async def test_a_post_without_its_csrf_token_changes_nothing(
        client: TestClient, sender: RecordedLinks, db: Database) -> None:
    await csrf_of(client)
    resp = await client.post("/web/signin", data={"matrix_id": ALICE})
    assert resp.status == 403 and "Nothing was changed" in await resp.text()
    resp = await client.post("/web/signin", data={"matrix_id": ALICE, "csrf_token": "forged"})
    assert resp.status == 403
    assert await db.fetchval("SELECT COUNT(*) FROM web_login_token") == 0
    other_site = await client.post("/web/signin", headers={"Origin": "https://evil.example"},
                                   data={"matrix_id": ALICE, "csrf_token": await csrf_of(client)})
    assert other_site.status == 403
    assert not sender.sent


async def test_sign_out_ends_the_session(client: TestClient, sender: RecordedLinks,
                                         db: Database) -> None:
    await open_link(client, await ask_link(client, sender))
    assert (await client.get("/private", allow_redirects=False)).status == 200
    resp = await client.post("/web/signout", allow_redirects=False,
                             data={"csrf_token": await csrf_of(client, "/private")})
    assert resp.status == 303
    assert await db.fetchval("SELECT COUNT(*) FROM web_session") == 0
    assert (await client.get("/private", allow_redirects=False)).status == 303


async def test_links_are_rate_limited_per_matrix_id(client: TestClient,
                                                    sender: RecordedLinks) -> None:
    for _ in range(rules.LINKS_PER_USER.hits):
        await ask_link(client, sender)
    resp = await client.post("/web/signin", data={
        "csrf_token": await csrf_of(client), "matrix_id": ALICE, "next": "/"})
    assert resp.status == 429 and "15 minutes" in await resp.text()


async def test_openid_sign_in_checks_the_token_with_its_homeserver(
        client: TestClient) -> None:
    token = await csrf_of(client)
    refused = await client.post("/web/signin/openid", data={
        "csrf_token": token, "access_token": "forged", "matrix_server_name": "localhost"})
    assert refused.status == 401 and "did not accept" in (await refused.json())["error"]
    other = await client.post("/web/signin/openid", data={
        "csrf_token": token, "access_token": "someone-elses", "matrix_server_name": "localhost"})
    assert other.status == 401
    no_csrf = await client.post("/web/signin/openid", data={
        "access_token": "alice-token", "matrix_server_name": "localhost"})
    assert no_csrf.status == 403
    ok = await client.post("/web/signin/openid", data={
        "csrf_token": token, "access_token": "alice-token", "matrix_server_name": "localhost"})
    assert ok.status == 200 and (await ok.json()) == {"user_id": ALICE}
    assert "Signed in as" in await (await client.get("/private")).text()


async def test_pages_carry_the_csp_and_static_files_are_cached(client: TestClient) -> None:
    resp = await client.get("/web/signin")
    assert "script-src 'self' 'nonce-" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    css = re.search(r'href="(/web/static/site.css\?v=[0-9a-f]+)"', await resp.text())
    assert css
    static = await client.get(css.group(1))
    assert static.status == 200 and "immutable" in static.headers["Cache-Control"]
    assert (await client.get("/web/static/../rules.py")).status == 404
