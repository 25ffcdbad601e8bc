"""Markup typed into any field a shop controls never becomes markup for a buyer.

An OWASP-style corpus goes through the real API into every user-controlled field
that reaches a `formatted_body` (campaign title, text, discount, ends and link;
product title, description, tags and URL; the shop's name and description), then
a follower's client reads the posts and cards back. Each payload is either refused
with a 4xx that names the field, or it arrives as text: the HTML holds only the
Matrix spec's allowlist, no event handler, no `javascript:`/`data:` link, the
payload reads back exactly (escaped, not interpreted), and the event stays under
Matrix's 64 KiB. The product page is checked the same way.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from mercato.matrix.html import MATRIX_ATTRIBUTES, MATRIX_TAGS
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop

# Text that looks like markup, or joins emoji with invisible characters: it is text, and
# every card and post must carry it, escaped.
PLAIN_TEXT = [
    "Use code <SAVE10>", "a < b and c > d", "ready <today>",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 pack "  # 👨‍👩‍👧: joined by ZWJ
    "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # 🏴󠁧󠁢󠁥󠁮󠁧󠁿
]
CORPUS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "'><iframe src=javascript:alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<mx-reply><blockquote>forged quote</blockquote></mx-reply>",
    "<!-- hidden -->",
    "< script>alert(1)</ script>",
    "<<script>script>alert(1)<</script>/script>",
    "<style>body{display:none}</style>",
    '<div data-mx-color="#ff0000">red</div>',
    "<details open ontoggle=alert(1)>",
    "<b>" * 101 + "deep",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)",
    '" onmouseover="alert(1)',
    "' onfocus='alert(1)' autofocus='",
    "javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "{{ 7*7 }} {% raw %} ${7*7} #{7*7}",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",
    "%3Cscript%3Ealert(1)%3C/script%3E",
    "[click](javascript:alert(1))",
    "a < b > c & d",
    *PLAIN_TEXT,
    "\u202eevil\u202c",
    "zero\u200bwidth",
    "x" * 70_000,
]
RECOMMENDED = 4  # Circle recommendations: a few, well under the daily limit
SAFE_SCHEMES = ("https://", "http://", "mxc://", "mailto:")
MAX_EVENT_BYTES = 65_536


class HtmlAudit(HTMLParser):
    """What a client would render: tags, attributes, and the text a reader sees."""

    def __init__(self, tags: frozenset[str], attributes: dict[str, set[str]]) -> None:
        super().__init__(convert_charrefs=True)
        self.allowed_tags, self.allowed_attributes = tags, attributes
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.allowed_tags:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name} on <{tag}>")
            elif name not in self.allowed_attributes.get(tag, set()) | {"rel"}:
                self.problems.append(f"attribute {name} on <{tag}>")
            if name in ("href", "src") and value and not value.startswith(
                    (*SAFE_SCHEMES, "/", "#")):
                self.problems.append(f"{name}={value}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment <!--{data}-->")


def audit_html(html: str, tags: frozenset[str] = MATRIX_TAGS,
               attributes: dict[str, set[str]] | None = None) -> tuple[list[str], str]:
    audit = HtmlAudit(tags, attributes if attributes is not None else MATRIX_ATTRIBUTES)
    audit.feed(html)
    audit.close()
    return audit.problems, "".join(audit.text)


class Outcomes:
    def __init__(self) -> None:
        self.refused = self.escaped = 0

    def refusal(self, where: str, status: int, answer: dict[str, Any], fields: list[str]) -> None:
        assert 400 <= status < 500, (where, status, answer)
        assert any(answer.get("error", "").startswith(f"{f}:") for f in fields) or \
            answer.get("errcode") == "M_TOO_LARGE", (where, answer)
        self.refused += 1


def check_event(event: dict[str, Any], payload: str, where: str, shown: bool = True) -> None:
    assert len(json.dumps(event).encode()) < MAX_EVENT_BYTES, where
    content = event["content"]
    problems, text = audit_html(content["formatted_body"])
    assert problems == [], (where, payload, problems, content["formatted_body"])
    if shown:
        assert payload in text, (where, payload, content["formatted_body"])
        assert payload in content["body"], (where, payload, content["body"])


async def _wait_post(client: MatrixClient, room_id: str, key: str, value: Any) -> dict[str, Any]:
    return await client.wait_for_message(
        room_id, lambda e: e.get("content", {}).get(key, {}).get(
            "campaign" if key == "org.mercato.post" else "sku") == value, timeout=60)


async def test_campaign_fields(open_network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(open_network, http, "owner")
    follower = await new_user(open_network, http, "reader")
    slug, key = await open_shop(api, owner.user_id, quota=1000)
    room_id = await follower.join(f"#shop_{slug}:localhost")
    outcomes, posted = Outcomes(), []
    for payload in CORPUS:
        fields = {"title": payload, "text": payload, "discount": payload, "ends": payload}
        status, answer = await api.call("POST", f"/shops/{slug}/campaigns", key,
                                        {"kind": "sale", "fields": fields})
        if status != 201:
            outcomes.refusal(f"campaign {payload[:40]!r}", status, answer, list(fields))
            continue
        status, answer = await api.call(
            "POST", f"/shops/{slug}/campaigns/{answer['id']}/schedule", key)
        assert status == 200, answer
        posted.append((payload, answer["id"]))
    # The link field: only an https:// address of the shop's verified site gets in.
    site = f"https://{slug}.example"
    links = ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
             f'{site}/"onmouseover="alert(1)', f"{site}/<script>", f"{site}/#\"><svg>",
             f"{site}/?q=javascript:alert(1)&x=<b>", f"{site}/a?b=c&d=e",
             f"{site}/?q=%22%3E%3Cscript%3E", "https://evil.example/"]
    for link in links:
        status, answer = await api.call("POST", f"/shops/{slug}/campaigns", key, {
            "kind": "text", "fields": {"title": "Link", "text": "see", "link": link}})
        if status != 201:
            assert 400 <= status < 500 and (answer["error"].startswith("link:")
                                             or "The link" in answer["error"]), answer
            outcomes.refused += 1
            continue
        status, answer = await api.call(
            "POST", f"/shops/{slug}/campaigns/{answer['id']}/schedule", key)
        assert status == 200, answer
        posted.append((link, answer["id"]))
    assert set(PLAIN_TEXT) <= {payload for payload, _ in posted}, "plain text was refused"
    for payload, campaign_id in posted:
        event = await _wait_post(follower, room_id, "org.mercato.post", campaign_id)
        check_event(event, payload, f"campaign {campaign_id}")
        outcomes.escaped += 1
    assert outcomes.escaped, "some payloads should have gone through as text"
    print(f"\nRESULT xss campaign refused={outcomes.refused} escaped={outcomes.escaped}")


async def test_product_fields_and_page(open_network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(open_network, http, "owner")
    follower = await new_user(open_network, http, "reader")
    slug, key = await open_shop(api, owner.user_id)
    room_id = await follower.join(f"#shop_{slug}:localhost")
    outcomes, shared = Outcomes(), []
    for n, payload in enumerate(CORPUS):
        sku = f"p{n}"
        body = {"sku": sku, "title": payload, "description": payload, "tags": [payload],
                "price": "9.99", "currency": "EUR"}
        status, answer = await api.call("POST", f"/shops/{slug}/products", key, body)
        if status != 201:
            outcomes.refusal(f"product {payload[:40]!r}", status, answer,
                             ["title", "description", "tags"])
            assert (await api.call("GET", f"/shops/{slug}/products/{sku}", key))[0] == 404
            continue
        shared.append((payload, sku))
    for n, url in enumerate(['https://x.example/"onmouseover="alert(1)',
                             "https://x.example/?a=<b>&c='d'", "javascript:alert(1)",
                             "data:text/html,hi", "https://x.example/\u202e"]):
        sku = f"u{n}"
        status, answer = await api.call("POST", f"/shops/{slug}/products", key, {
            "sku": sku, "title": "Linked", "price": "1.00", "currency": "EUR", "url": url})
        if status != 201:
            outcomes.refusal(f"url {url!r}", status, answer, ["url"])
            continue
        shared.append((url, sku))
    assert set(PLAIN_TEXT) <= {payload for payload, _ in shared}, "plain text was refused"
    status, _ = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "plain", "title": "Plain mug", "description": "Plain", "tags": ["plain"],
        "price": "9.99", "currency": "EUR"})
    assert status == 201
    plain, _ = await fetch_page(http, f"{open_network.commerce_url}/p/{slug}/plain")
    baseline = shell_of(plain)
    for payload, sku in shared:
        status, answer = await api.call("POST", f"/shops/{slug}/products/{sku}/share", key,
                                        {"room_id": room_id})
        assert status == 200, answer
        card = await follower.wait_for_message(room_id,
                                               lambda e, i=answer["event_id"]: e["event_id"] == i)
        check_event(card, payload, f"card {sku}", shown=sku.startswith("p"))
        await _check_page(http, open_network, slug, sku, payload, baseline)
        outcomes.escaped += 1
    assert outcomes.escaped
    print(f"\nRESULT xss product refused={outcomes.refused} escaped={outcomes.escaped}")


class Shell(HTMLParser):
    """The tags and attributes of a web page as the shell renders it with plain text, and
    the nonces of its scripts: what a page with a payload in it may hold, and no more."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: dict[str, set[str]] = {}
        self.script_nonces: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes.setdefault(tag, set()).update(name for name, _ in attrs)
        if tag == "script":
            self.script_nonces.append(dict(attrs).get("nonce"))


def shell_of(page: str) -> Shell:
    shell = Shell()
    shell.feed(page)
    shell.close()
    return shell


def check_csp(csp: str, *, embeddable: bool) -> str:
    """The web shell's CSP, by the properties that matter: scripts only from this site or
    with this response's nonce (never inline without it, never eval), nothing else from
    elsewhere, no plugins, no <base>; framed by any site only where the page is made to be
    (the storefront, a room widget), by none otherwise. Returns the nonce."""
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"], csp
    scripts = directives["script-src"]
    nonces = [s for s in scripts if s.startswith("'nonce-") and s.endswith("'")]
    assert set(scripts) - set(nonces) <= {"'self'"} and len(nonces) <= 1, csp
    assert len(nonces[0]) >= len("'nonce-'") + 16 if nonces else True, csp
    for directive in ("default-src", "script-src", "style-src", "connect-src"):
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} & \
            set(directives.get(directive, [])), csp
    assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"], csp
    assert directives["frame-ancestors"] == (["*"] if embeddable else ["'none'"]), csp
    return nonces[0][len("'nonce-"):-1] if nonces else ""


async def fetch_page(http, url: str, *, embeddable: bool = True) -> tuple[str, str]:
    """(the page, its CSP nonce): a 200 with the shell's CSP."""
    async with http.get(url) as resp:
        page = await resp.text()
        assert resp.status == 200, (url, resp.status, page[:500])
        nonce = check_csp(resp.headers.get("Content-Security-Policy", ""),
                          embeddable=embeddable)
    return page, nonce


def check_escaped(page: str, nonce: str, baseline: Shell, payloads: list[str],
                  where: str) -> None:
    """No tag or attribute the plain-text page lacks, every script the shell's own (with
    the response's nonce), and each payload shown as the text it is."""
    allowed = {tag: names for tag, names in baseline.attributes.items()}
    problems, text = audit_html(page, frozenset(allowed), allowed)
    assert problems == [], (where, problems)
    shell = shell_of(page)
    assert len(shell.script_nonces) == len(baseline.script_nonces), (where, shell.script_nonces)
    assert all(n == nonce for n in shell.script_nonces if n is not None), where
    for payload in payloads:
        assert payload in text, (where, payload)


async def _check_page(http, network: RunningNetwork, slug: str, sku: str, payload: str,
                      baseline: Shell) -> None:
    # The product page is a storefront page: any site may frame it (a room widget).
    page, nonce = await fetch_page(http, f"{network.commerce_url}/p/{slug}/{sku}")
    check_escaped(page, nonce, baseline, [payload] if sku.startswith("p") else [],
                  f"/p/{slug}/{sku}")


async def test_shop_name_and_description(open_network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(open_network, http, "owner")
    follower = await new_user(open_network, http, "reader")
    slug, key = await open_shop(api, owner.user_id)
    room_id = await follower.join(f"#shop_{slug}:localhost")
    status, _ = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "named", "title": "Plain mug", "price": "5.00", "currency": "EUR"})
    assert status == 201
    outcomes = Outcomes()
    for payload in CORPUS:
        # A name must be unlike other shops' names, so each carries a unique tail.
        name = f"{payload[:50]} {uuid.uuid4().hex[:6]}" if len(payload) < 60 else payload
        status, answer = await api.call("PATCH", f"/shops/{slug}", key,
                                        {"name": name, "description": payload})
        if status != 200:
            outcomes.refusal(f"shop {payload[:40]!r}", status, answer, ["name", "description"])
            continue
        status, answer = await api.call("POST", f"/shops/{slug}/products/named/share", key,
                                        {"room_id": room_id})
        assert status == 200, answer
        card = await follower.wait_for_message(room_id,
                                               lambda e, i=answer["event_id"]: e["event_id"] == i)
        check_event(card, name, f"card by {name[:40]!r}")
        # The channel's topic (plain text state) carries the description as typed.
        topic = await follower.state(room_id, "m.room.topic")
        assert payload in topic.get("topic", ""), (payload, topic)
        outcomes.escaped += 1
    assert outcomes.escaped
    print(f"\nRESULT xss shop refused={outcomes.refused} escaped={outcomes.escaped}")


async def _signed_in(network: RunningNetwork, api_http, user_id: str
                     ) -> tuple[aiohttp.ClientSession, str]:
    """A web session of `user_id` (signed in with a one-time link, as the shop bot's `web`
    command gives one), and the site's address."""
    headers = {"Authorization": f"Bearer {network.config.commerce.service_token}",
               "X-Mercato-Acting-User": user_id}
    async with api_http.post(f"{network.commerce_url}/api/v1/me/web-login", headers=headers,
                             json={}) as resp:
        assert resp.status == 201, await resp.text()
        url = (await resp.json())["url"]
    parts = urlsplit(url)
    site = f"{parts.scheme}://{parts.netloc}"
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with browser.get(url) as resp:
        form = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', await resp.text()))
    async with browser.post(f"{site}/web/signin/link", data=form, headers={"Origin": site},
                            allow_redirects=False) as resp:
        assert resp.status in (302, 303), await resp.text()
    return browser, site


async def _feed_showing(browser: aiohttp.ClientSession, site: str, shown: list[str]) -> Shell:
    """The buyer's Circle once the friend's recommendations reached it (the buyer joins
    the friend's circle room a moment before)."""
    for _ in range(100):
        page, _ = await fetch_page(browser, site + "/circle", embeddable=False)
        if all(s in audit_html(page)[1] for s in shown):
            return shell_of(page)
        await asyncio.sleep(0.1)
    raise AssertionError(f"the Circle never showed {shown}")


async def test_storefront_pages_escape_product_fields(open_network: RunningNetwork, http,
                                                      api: Api) -> None:
    """The storefront, a cart, its checkout, the buyer's orders and their Circle show
    product titles as text, under the shell's CSP."""
    owner = await new_user(open_network, http, "owner")
    buyer = await new_user(open_network, http, "buyer")
    slug, key = await open_shop(api, owner.user_id)
    status, answer = await api.call("PUT", f"/shops/{slug}/orders/settings", key, {
        "delivery": ["pickup"], "payment_methods": {"pickup": {}}})
    assert status == 200, answer
    titles: list[str] = []  # those a product may have (the test above checks the refusals)
    for title in ["Plain mug", *CORPUS]:
        status, answer = await api.call("POST", f"/shops/{slug}/products", key, {
            "sku": f"s{len(titles)}", "title": title, "price": "2.00", "currency": "EUR"})
        if status == 201:
            titles.append(title)
    titles = titles[1:]
    assert set(PLAIN_TEXT) <= set(titles) and "<script>alert(1)</script>" in titles
    browser, site = await _signed_in(open_network, http, buyer.user_id)
    acting = {"Authorization": f"Bearer {open_network.config.commerce.service_token}",
              "X-Mercato-Acting-User": buyer.user_id}

    friend = await new_user(open_network, http, "friend")

    async def call(method: str, path: str, body: Any, who: str = buyer.user_id) -> Any:
        async with http.request(method, f"{open_network.commerce_url}/api/v1{path}",
                                headers={**acting, "X-Mercato-Acting-User": who},
                                json=body) as resp:
            assert resp.status in (200, 201), (path, await resp.text())
            return await resp.json()

    async def baseline(path: str) -> Shell:
        return shell_of((await fetch_page(browser, site + path,
                                          embeddable=path != "/circle"))[0])

    async def order(*skus: str) -> str:
        for sku in skus:
            await call("POST", f"/me/cart/{slug}/items", {"sku": sku})
        placed = await call("POST", "/me/orders", {"shop": slug, "from_cart": True,
                                                   "payment": "pickup",
                                                   "delivery": {"kind": "pickup"}})
        return f"/s/{slug}/orders/{placed['id']}"

    async def recommend(sku: str) -> None:  # by a friend, in whose circle the buyer is
        await call("POST", "/me/circle/recommendations", {"shop": slug, "sku": sku},
                   friend.user_id)

    async with browser:
        # Each page is read first with the plain product only, then with the payloads.
        plain = {f"/s/{slug}": await baseline(f"/s/{slug}")}
        plain["order"] = await baseline(await order("s0"))
        plain["/orders"] = await baseline("/orders")
        await call("POST", f"/me/cart/{slug}/items", {"sku": "s0"})
        plain.update({path: await baseline(path)
                      for path in (f"/s/{slug}/cart", f"/s/{slug}/checkout")})
        await call("POST", "/me/circle", None)
        room = (await call("POST", "/me/circle", None, friend.user_id))["room_id"]
        await call("POST", "/me/circle/friends", {"user_id": buyer.user_id}, friend.user_id)
        await buyer.join(room)
        await recommend("s0")
        plain["/circle"] = await _feed_showing(browser, site, ["Plain mug"])
        payload_skus = [f"s{n}" for n in range(1, len(titles) + 1)]
        for sku in payload_skus:
            await call("POST", f"/me/cart/{slug}/items", {"sku": sku})
        for path in (f"/s/{slug}", f"/s/{slug}/cart", f"/s/{slug}/checkout"):
            page, nonce = await fetch_page(browser, site + path)
            check_escaped(page, nonce, plain[path], titles, path)
        order_path = await order()
        for path, kind in (("/orders", "/orders"), (order_path, "order")):
            page, nonce = await fetch_page(browser, site + path)
            check_escaped(page, nonce, plain[kind], titles, path)
        recommended = titles[:RECOMMENDED]
        for sku in payload_skus[:RECOMMENDED]:
            await recommend(sku)
        # The Circle is the buyer's own page: no site may frame it (the storefront's pages
        # may be, as a room widget).
        await _feed_showing(browser, site, recommended)
        page, nonce = await fetch_page(browser, site + "/circle", embeddable=False)
        check_escaped(page, nonce, plain["/circle"], recommended, "/circle")
