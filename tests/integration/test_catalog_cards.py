"""Product cards: read back by a second client, edited live, alerts, product page, previews."""

from __future__ import annotations

import asyncio
import time
from html.parser import HTMLParser

from mercato.matrix.html import MATRIX_ATTRIBUTES, MATRIX_TAGS
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop, png


class AllowlistChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in MATRIX_TAGS:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if name not in MATRIX_ATTRIBUTES.get(tag, set()) and name != "rel":
                self.problems.append(f"attribute {name} on <{tag}>")
            if name in ("href", "src") and value and not value.startswith(
                    ("https://", "http://", "mxc://", "mailto:")):
                self.problems.append(f"{name}={value}")


async def _wait_dm_from(client: MatrixClient, sender: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync = await client.sync(timeout_ms=1000)
        for room_id, room in sync.get("rooms", {}).get("invite", {}).items():
            if any(e.get("sender") == sender for e in room.get("invite_state", {}).get(
                    "events", [])):
                await client.join(room_id)
                return room_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"no DM from {sender}")


async def test_card_is_read_back_edited_live_and_alerts_once(
        network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    shop = f"@shop_{slug}:localhost"
    buyer = await new_user(network, http, "buyer")
    room_id = await buyer.join(f"#shop_{slug}:localhost")

    status, media = await api.call("POST", f"/shops/{slug}/media", key, data=png(80, 60))
    assert status == 201
    for bad, error in (
            ({"tags": "kitchen, gifts"},
             'tags: must be a list of text, like ["mugs", "kitchen"], not text'),
            ({"price": 12}, 'price: must be a string like "19.90", not a number: prices are '
                            "never JSON numbers"),
            ({"price": "-0"}, "price: '-0' is not a price: prices cannot be negative; write it "
                              "like 19.90")):
        status, refused = await api.call("POST", f"/shops/{slug}/products", key, {
            "sku": "mug-1", "title": "Mug", "price": "12", "currency": "EUR", **bad})
        assert (status, refused["error"]) == (400, error)
    brackets = "Use code <SAVE10>, ready <today>: a < b and c > d"
    status, product = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "mug-1", "title": "Stoneware mug", "price": "24.00", "currency": "eur",
        "description": f"Holds 350 ml & keeps heat <3\n{brackets}", "stock": "in_stock",
        "tags": ["kitchen", "gifts"], "image_mxc": media["image_mxc"],
        "image_info": media["image_info"]})
    assert status == 201, product
    assert product["currency"] == "EUR" and product["tags"] == ["gifts", "kitchen"]
    status, dup = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "mug-1", "title": "Again", "price": "1", "currency": "EUR"})
    assert status == 409 and dup["errcode"] == "MERCATO_SKU_TAKEN"

    status, shared = await api.call("POST", f"/shops/{slug}/products/mug-1/share", key,
                                    {"room_id": room_id})
    assert status == 200, shared
    card = await buyer.wait_for_message(room_id, lambda e: e["event_id"] == shared["event_id"])
    content = card["content"]
    assert card["sender"] == shop
    assert content["msgtype"] == "m.image" and content["url"] == media["image_mxc"]
    assert "Stoneware mug — 24.00 EUR" in content["body"]
    assert "In stock" in content["body"] and "Holds 350 ml & keeps heat <3" in content["body"]
    assert f"/p/{slug}/mug-1" in content["body"]
    checker = AllowlistChecker()
    checker.feed(content["formatted_body"])
    assert checker.problems == [], checker.problems
    assert "keeps heat &lt;3" in content["formatted_body"]
    # Angle brackets are text: literal in the body, escaped in the HTML.
    assert brackets in content["body"]
    assert ("Use code &lt;SAVE10&gt;, ready &lt;today&gt;: a &lt; b and c &gt; d"
            in content["formatted_body"])
    data = content["org.mercato.product"]
    assert (data["sku"], data["price"], data["currency"], data["stock"]) == (
        "mug-1", "24.00", "EUR", "in_stock")
    assert data["shop"] == shop

    await buyer.send(room_id, {"m.relates_to": {"rel_type": "m.annotation",
                                                "event_id": card["event_id"], "key": "🔔"}},
                     event_type="m.reaction")
    alerts_url = f"{api.base}/me/alerts"
    headers = {"Authorization": f"Bearer {network.config.commerce.service_token}",
               "X-Mercato-Acting-User": buyer.user_id}
    for _ in range(100):
        async with http.get(alerts_url, headers=headers) as resp:
            alerts = (await resp.json())["alerts"]
        if alerts:
            break
        await asyncio.sleep(0.2)
    assert [(a["merchant_slug"], a["sku"]) for a in alerts] == [(slug, "mug-1")]

    status, cheaper = await api.call("PATCH", f"/shops/{slug}/products/mug-1", key,
                                     {"price": "19.50", "original_price": "24.00"})
    assert status == 200, cheaper
    edit = await buyer.wait_for_message(
        room_id, lambda e: e.get("content", {}).get("m.relates_to", {}).get("rel_type")
        == "m.replace" and e["content"]["m.relates_to"]["event_id"] == card["event_id"])
    new = edit["content"]["m.new_content"]
    assert "19.50 EUR (was 24.00 EUR)" in new["body"]
    assert new["org.mercato.product"]["price"] == "19.50"
    assert "<del>24.00 EUR</del>" in new["formatted_body"]

    dm_id = await _wait_dm_from(buyer, shop)
    alert = await buyer.wait_for_message(dm_id, lambda e: "🔔" in e.get("content", {}).get(
        "body", ""))
    assert "is now 19.50 EUR (was 24.00 EUR)" in alert["content"]["body"]
    # A second drop is not announced again: the subscriber was told once.
    assert (await api.call("PATCH", f"/shops/{slug}/products/mug-1", key,
                           {"price": "18.00"}))[0] == 200
    await buyer.wait_for_message(room_id, lambda e: "18.00 EUR" in str(
        e.get("content", {}).get("m.new_content", {}).get("body", "")))
    await asyncio.sleep(1)
    alerts_sent = [e for e in await buyer.messages(dm_id) if "🔔" in
                   e.get("content", {}).get("body", "")]
    assert len(alerts_sent) == 1


async def test_product_page_and_url_preview(network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    status, media = await api.call("POST", f"/shops/{slug}/media", key, data=png(120, 90))
    status, product = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "tea-9", "title": "Jasmine tea\u202e", "price": "7.5", "currency": "CNY",
        "image_mxc": media["image_mxc"], "image_info": media["image_info"]})
    assert status == 400  # a right-to-left override in the title
    status, product = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "tea-9", "title": "Jasmine tea", "price": "7.5", "currency": "CNY",
        "image_mxc": media["image_mxc"], "image_info": media["image_info"]})
    assert status == 201, product
    page_url = product["page"]
    assert page_url == f"http://localhost:{network.config.commerce.port}/p/{slug}/tea-9"
    async with http.get(f"{network.commerce_url}/p/{slug}/tea-9") as resp:
        assert resp.status == 200
        html = await resp.text()
    assert '<meta property="og:title" content="Jasmine tea — 7.50 CNY">' in html
    assert f'href="https://matrix.to/#/#shop_{slug}:localhost"' in html
    async with http.get(f"{network.commerce_url}/p/{slug}/tea-9/image") as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert (await resp.read()).startswith(b"\x89PNG")
    async with http.get(f"{network.commerce_url}/p/{slug}/nope") as resp:
        assert resp.status == 404

    buyer = await new_user(network, http, "buyer")
    preview = await buyer.request("GET", "/_matrix/client/v1/media/preview_url",
                                  params={"url": page_url})
    assert preview["og:title"] == "Jasmine tea — 7.50 CNY"
    assert preview.get("og:image", "").startswith("mxc://")
    # The preview exception covers product pages only, not the rest of this machine.
    from tests.integration.client import MatrixError
    try:
        await buyer.request("GET", "/_matrix/client/v1/media/preview_url",
                            params={"url": f"http://localhost:{network.config.synapse.port}/"})
        raise AssertionError("a preview of another local port must be refused")
    except MatrixError as e:
        assert e.status in (403, 404, 502)
