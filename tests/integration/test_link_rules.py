"""The link rules of posts hold for everything a shop writes, through the real API.

Products (URL, description), the shop's profile and auto-replies, imported catalog rows
and shared cards are refused with the sentence a post gets, and nothing is written.
Shares count against their own daily quota, so the post quota has no side door.
"""

from __future__ import annotations

from typing import Any

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.commerce_api import commerce_rows
from tests.integration.shop_helpers import Api, new_user, open_shop

EVIL = "https://evil.example/login"


async def _post_refusal(api: Api, slug: str, key: str, link: str) -> str:
    """What the shop is told when it puts `link` in a post."""
    status, refused = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "text", "fields": {"title": "Deal", "text": f"See {link}"}})
    assert status == 422 and refused["errcode"] == "MERCATO_POST_REFUSED", refused
    return refused["error"]


def _product(sku: str, **fields: Any) -> dict[str, Any]:
    return {"sku": sku, "title": "Stoneware mug", "price": "12.00", "currency": "EUR",
            **fields}


def _cards(messages: list[dict[str, Any]], shop: str) -> list[dict[str, Any]]:
    return [e for e in messages if e.get("sender") == shop
            and "org.mercato.product" in e.get("content", {})]


async def test_the_catalog_and_the_shop_profile_follow_the_link_rules(
        network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id, verified=False)
    sentence = await _post_refusal(api, slug, key, EVIL)
    assert "has no verified website yet" in sentence

    for sku, fields in (("url-1", {"url": EVIL}),
                        ("desc-1", {"description": f"Cheaper at {EVIL} today"}),
                        ("bare-1", {"description": "Cheaper at evil.example/login today"}),
                        ("tag-1", {"tags": ["evil.example/login"]})):
        status, refused = await api.call("POST", f"/shops/{slug}/products", key,
                                         _product(sku, **fields))
        assert status == 422 and refused["errcode"] == "MERCATO_POST_REFUSED", refused
        assert refused["error"].endswith("has no verified website yet; verify it to link to "
                                         "it."), refused
        status, _ = await api.call("GET", f"/shops/{slug}/products/{sku}", key)
        assert status == 404, f"{sku} must not have been written"
    status, refused = await api.call("POST", f"/shops/{slug}/products", key,
                                     _product("url-2", url=EVIL))
    assert refused["error"] == sentence  # word for word what the post got

    # A product without links is fine, and a PATCH cannot add one later.
    assert (await api.call("POST", f"/shops/{slug}/products", key, _product("ok-1")))[0] == 201
    status, refused = await api.call("PATCH", f"/shops/{slug}/products/ok-1", key,
                                     {"description": f"Now at {EVIL}"})
    assert status == 422 and refused["error"] == sentence, refused
    status, product = await api.call("GET", f"/shops/{slug}/products/ok-1", key)
    assert product["description"] == ""

    before = await api.call("GET", f"/shops/{slug}", api.operator)
    for change in ({"description": f"Our real shop: {EVIL}"},
                   {"welcome_message": f"Hello! Order at {EVIL}"},
                   {"away_message": "Closed. Meanwhile see evil.example/login"},
                   {"keyword_replies": [{"keyword": "price", "reply": f"See {EVIL}"}]}):
        status, refused = await api.call("PATCH", f"/shops/{slug}", key, change)
        assert status == 422 and refused["errcode"] == "MERCATO_POST_REFUSED", (change, refused)
        assert "evil.example/login" in refused["error"]
    assert await api.call("GET", f"/shops/{slug}", api.operator) == before

    csv = ("sku,title,price,currency,url,description\n"
           "CSV-1,Plain mug,5.00,EUR,,A good mug\n"
           f"CSV-2,Phish mug,5.00,EUR,{EVIL},\n"
           "CSV-3,Hidden mug,5.00,EUR,,Cheaper at evil.example/login\n"
           "CSV-4,Other mug,6.00,EUR,,\n").encode()
    status, report = await api.call("POST", f"/shops/{slug}/products/import?images=skip", key,
                                    data=csv)
    assert status == 200, report
    assert (report["imported"], report["refused_count"]) == (2, 2), report
    assert [(r["row"], r["sku"], r["reason"]) for r in report["refused"]] == [
        (3, "CSV-2", sentence),
        (4, "CSV-3", "The link evil.example/login points outside Mercato and your shop has no "
                     "verified website yet; verify it to link to it.")]
    for sku, status_wanted in (("CSV-1", 200), ("CSV-2", 404), ("CSV-3", 404), ("CSV-4", 200)):
        assert (await api.call("GET", f"/shops/{slug}/products/{sku}", key))[0] == status_wanted


async def test_urls_are_parsed_strictly_and_stored_normalised(
        network: RunningNetwork, http, api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    site = f"https://{slug}.example"
    for n, (url, error) in enumerate((
            (f'{site}/x" onmouseover="alert(1)',
             "url: must be one https:// address; '\"' cannot be part of it (write it "
             "%-encoded)"),
            (f"{site}@evil.example/login", "url: must not contain a user name or password"),
            (f"{site}:99999/x", "url: has a port that is not a number from 1 to 65535"),
            (f"{site}/100%", "url: has a % that is not followed by two hexadecimal digits"))):
        status, refused = await api.call("POST", f"/shops/{slug}/products", key,
                                         _product(f"bad-{n}", url=url))
        assert status == 400 and refused["error"] == error, (url, refused)
        assert (await api.call("GET", f"/shops/{slug}/products/bad-{n}", key))[0] == 404
    status, campaign = await api.call("POST", f"/shops/{slug}/campaigns", key, {
        "kind": "text", "fields": {"title": "Deal", "text": "New mugs",
                                   "link": f"{site}@evil.example/login"}})
    assert status == 400 and campaign["error"] == (
        "link: must not contain a user name or password"), campaign
    status, shop = await api.call("PATCH", f"/shops/{slug}", key,
                                  {"website": f'{site}/"onmouseover="x'})
    assert status == 400 and shop["error"].startswith("website: must be one https:// address")

    status, product = await api.call("POST", f"/shops/{slug}/products", key,
                                     _product("good-1", url=f"https://{slug.upper()}.example:443"
                                                            "/mugs?c=1"))
    assert status == 201, product
    assert product["url"] == f"{site}/mugs?c=1"


async def test_a_verified_shop_links_to_its_own_site(network: RunningNetwork, http,
                                                     api: Api) -> None:
    owner = await new_user(network, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    site = f"https://{slug}.example"
    status, product = await api.call("POST", f"/shops/{slug}/products", key, _product(
        "mug-1", url=f"{site}/mug", description=f"More photos at {site}/mug/photos"))
    assert status == 201, product
    status, shop = await api.call("PATCH", f"/shops/{slug}", key, {
        "description": f"Mugs from {site}", "welcome_message": f"Hello! See {site}/faq",
        "keyword_replies": [{"keyword": "delivery", "reply": f"{site}/delivery"}]})
    assert status == 200, shop
    status, refused = await api.call("POST", f"/shops/{slug}/products", key,
                                     _product("mug-2", url=EVIL))
    assert status == 422 and refused["error"] == (
        f"The link {EVIL} points to evil.example; posts may only link to localhost, "
        f"{slug}.example."), refused


async def test_a_stored_outside_link_is_not_shared(network: RunningNetwork, http,
                                                   api: Api) -> None:
    owner = await new_user(network, http, "owner")
    follower = await new_user(network, http, "follower")
    slug, key = await open_shop(api, owner.user_id)
    room_id = await follower.join(f"#shop_{slug}:localhost")
    assert (await api.call("POST", f"/shops/{slug}/products", key,
                           _product("old-1", url=f"https://{slug}.example/old")))[0] == 201
    # As a product saved before the link rules covered the catalog would be.
    assert commerce_rows(network, "UPDATE product SET url=? WHERE merchant_slug=? AND sku=?"
                         " RETURNING sku", EVIL, slug, "old-1") == [("old-1",)]
    sentence = await _post_refusal(api, slug, key, EVIL)

    status, refused = await api.call("POST", f"/shops/{slug}/products/old-1/share", key,
                                     {"room_id": room_id})
    assert status == 422 and refused["error"] == sentence, refused
    status, refused = await api.call("GET", f"/shops/{slug}/products/old-1/card", key)
    assert status == 422 and refused["error"] == sentence, refused
    async with http.get(f"{network.commerce_url}/p/{slug}/old-1") as resp:
        assert resp.status == 200 and "evil.example" not in await resp.text()
    assert commerce_rows(network, "SELECT COUNT(*) FROM card WHERE merchant_slug=?",
                         slug) == [(0,)]
    assert _cards(await follower.messages(room_id), f"@shop_{slug}:localhost") == []


async def test_shares_count_against_their_own_daily_quota(network: RunningNetwork, http,
                                                          api: Api) -> None:
    owner = await new_user(network, http, "owner")
    follower: MatrixClient = await new_user(network, http, "follower")
    slug, key = await open_shop(api, owner.user_id, quota=10, shares=2)
    shop = f"@shop_{slug}:localhost"
    room_id = await follower.join(f"#shop_{slug}:localhost")
    assert (await api.call("POST", f"/shops/{slug}/products", key, _product("mug-1")))[0] == 201
    for _ in range(2):
        status, shared = await api.call("POST", f"/shops/{slug}/products/mug-1/share", key,
                                        {"room_id": room_id})
        assert status == 200, shared
    await follower.wait_for_message(room_id, lambda e: e["event_id"] == shared["event_id"])

    status, refused = await api.call("POST", f"/shops/{slug}/products/mug-1/share", key,
                                     {"room_id": room_id})
    assert status == 429 and refused["errcode"] == "MERCATO_QUOTA_EXCEEDED", refused
    assert refused["error"].startswith("Your shop may share 2 product cards a day and has "
                                       "used all of them. The next share is possible after ")
    assert refused["error"].endswith(" UTC. The operator can raise the quota.")
    assert len(_cards(await follower.messages(room_id), shop)) == 2
    assert commerce_rows(network, "SELECT COUNT(*) FROM card WHERE merchant_slug=?",
                         slug) == [(2,)]

    # The operator sets it as the post quota is set.
    status, quota = await api.call("PUT", f"/shops/{slug}/quota", api.operator,
                                   {"shares_per_day": 3})
    assert status == 200 and quota == {"slug": slug, "posts_per_day": 10,
                                       "shares_per_day": 3}, quota
    status, shared = await api.call("POST", f"/shops/{slug}/products/mug-1/share", key,
                                    {"room_id": room_id})
    assert status == 200, shared
