"""Shop A's credentials on every route of shop B: refused, and nothing of B changes.

The routes come from the API's own route table, so a route added later is covered
without editing this file. Each call carries a body that would succeed for B's own
owner, so a missing check would show as a change, not as a validation error.
tests/integration/test_merchant_accounts.py::test_staff_roles_are_enforced checks
the staff, key and operator routes with messages; this is the whole table.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

import appservices.commerce.api  # noqa: F401 (registers every route in ROUTES)
from appservices.commerce.http import ROUTES
from mercato.http_api import Spec
from mercato_ops.testnet import RunningNetwork
from tests.integration.shop_helpers import Api, new_user, open_shop, png

CSV = b"sku,title,price,currency\nimported-1,Imported,5.00,EUR\n"
# Bodies that B's owner could send successfully.
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/shops/{slug}"): {"name": "Taken over", "description": "Mine now"},
    ("POST", "/shops/{slug}/staff"): {"user_id": "{attacker}", "role": "owner"},
    ("POST", "/shops/{slug}/keys"): {"label": "stolen", "role": "owner"},
    ("POST", "/shops/{slug}/campaigns"): {"kind": "text", "fields": {
        "title": "Hijacked", "text": "Buy from us instead"}},
    ("POST", "/shops/{slug}/campaigns/{campaign_id}/schedule"): {},
    ("POST", "/shops/{slug}/coupons/redeem"): {"code": "{code}"},
    ("PUT", "/shops/{slug}/quota"): {"posts_per_day": 1000},
    ("POST", "/shops/{slug}/products"): {"sku": "planted", "title": "Planted",
                                         "price": "1.00", "currency": "EUR"},
    ("PATCH", "/shops/{slug}/products/{sku}"): {"price": "0.01"},
    ("POST", "/shops/{slug}/products/{sku}/share"): {"room_id": "{channel}"},
    ("POST", "/shops/{slug}/approve"): {"reason": "x"},
    ("POST", "/shops/{slug}/reject"): {"reason": "x"},
    ("POST", "/shops/{slug}/suspend"): {"reason": "x"},
    ("POST", "/shops/{slug}/reinstate"): {"reason": "x"},
    ("PUT", "/shops/{slug}/orders/settings"): {"delivery": ["pickup"],
                                               "payment_methods": {"on_delivery": {}}},
    ("POST", "/shops/{slug}/orders/{order_id}/status"): {"status": "confirmed"},
    ("PUT", "/shops/{slug}/webhook"): {"url": "https://hooks.example.org/stolen"},
    ("PUT", "/shops/{slug}/menu"): {"links": [{"label": "Elsewhere",
                                               "url": "https://elsewhere.example.org/"}]},
    ("PUT", "/shops/{slug}/follow-reward"): {"title": "Hijacked reward", "percent_off": 90,
                                             "stock": 5, "expires_at": "{expires}"},
}
# Routes the new features added: each must be in the table shop_routes() tries.
NEW_FEATURE_ROUTES = {
    ("GET", "/shops/{slug}/orders/settings"), ("PUT", "/shops/{slug}/orders/settings"),
    ("GET", "/shops/{slug}/orders"), ("GET", "/shops/{slug}/orders/{order_id}"),
    ("POST", "/shops/{slug}/orders/{order_id}/status"),
    ("PUT", "/shops/{slug}/webhook"), ("GET", "/shops/{slug}/webhook"),
    ("DELETE", "/shops/{slug}/webhook"), ("POST", "/shops/{slug}/webhook/secret"),
    ("GET", "/shops/{slug}/webhook/deliveries"),
    ("POST", "/shops/{slug}/webhook/deliveries/{event_id}/resend"),
    ("GET", "/shops/{slug}/menu"), ("PUT", "/shops/{slug}/menu"),
    ("GET", "/shops/{slug}/follow-reward"), ("PUT", "/shops/{slug}/follow-reward"),
    ("DELETE", "/shops/{slug}/follow-reward"),
    ("GET", "/shops/{slug}/coupons"), ("POST", "/shops/{slug}/coupons/redeem"),
}
RAW_BODIES = {("POST", "/shops/{slug}/media"): png(),
              ("POST", "/shops/{slug}/products/import"): CSV}


def _placeholder(schema: dict[str, Any]) -> Any:
    return {"string": "x", "integer": 1, "boolean": False, "object": {}, "array": []}.get(
        schema.get("type", "string"), "x")


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, real in names.items():
            value = value.replace("{" + name + "}", real)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def shop_routes() -> list[tuple[str, str, Spec]]:
    """Every route about one shop, except those that act for the calling user
    (price alerts: any buyer may subscribe to any shop's product)."""
    return [(method, path, spec) for method, path, _, spec in ROUTES
            if path.startswith("/shops/{slug}") and spec.auth != "any"]


async def _snapshot(api: Api, network: RunningNetwork, slug: str, sku: str) -> dict[str, Any]:
    seen = {}
    for path in (f"/shops/{slug}", f"/shops/{slug}/staff", f"/shops/{slug}/keys",
                 f"/shops/{slug}/audit", f"/shops/{slug}/products",
                 f"/shops/{slug}/products/{sku}", f"/shops/{slug}/campaigns"):
        status, body = await api.call("GET", path, api.operator)
        assert status == 200, (path, body)
        seen[path] = body
    for table, column in (("merchant", "slug"), ("channel", "merchant_slug"),
                          ("api_key", "merchant_slug"), ("staff", "merchant_slug"),
                          ("audit_log", "merchant_slug"), ("campaign", "merchant_slug"),
                          ("coupon", "merchant_slug"), ("coupon_code", "merchant_slug"),
                          ("product", "merchant_slug"), ("card", "merchant_slug"),
                          ("card_edit", "merchant_slug"),
                          ("price_alert", "merchant_slug"),
                          ("support_thread", "merchant_slug"),
                          ("orders", "merchant_slug"), ("order_settings", "merchant_slug"),
                          ("webhook_endpoint", "merchant_slug"),
                          ("shop_menu", "merchant_slug"), ("follow_reward", "merchant_slug")):
        seen[table] = network.rows("commerce", f"SELECT * FROM {table} WHERE {column}=?"
                                   " ORDER BY 1", slug)
    seen["outbox"] = network.rows("commerce", "SELECT o.* FROM outbox o JOIN campaign c "
                                  "ON c.id=o.campaign_id WHERE c.merchant_slug=? ORDER BY 1",
                                  slug)
    seen["order_history"] = network.rows(
        "commerce", "SELECT h.* FROM order_history h JOIN orders o ON o.id=h.order_id "
        "WHERE o.merchant_slug=? ORDER BY 1", slug)
    # Which events B's endpoint has (its tries to reach hooks.example.org go on meanwhile).
    seen["webhook_delivery"] = network.rows(
        "commerce", "SELECT d.event_id FROM webhook_delivery d JOIN webhook_endpoint e "
        "ON e.id=d.endpoint_id WHERE e.merchant_slug=? ORDER BY 1", slug)
    return seen


async def _order_of(api: Api, network: RunningNetwork, http: aiohttp.ClientSession,
                    slug: str, key: str, buyer: str) -> tuple[str, str]:
    """B takes orders and has a webhook; `buyer` orders a mug: (order ID, its event ID)."""
    status, body = await api.call("PUT", f"/shops/{slug}/orders/settings", key, {
        "delivery": ["pickup"], "payment_methods": {"pickup": {}}})
    assert status == 200, body
    status, body = await api.call("PUT", f"/shops/{slug}/webhook", key,
                                  {"url": "https://hooks.example.org/b"})
    assert status == 200, body
    acting = {"Authorization": f"Bearer {network.config.commerce.service_token}",
              "X-Mercato-Acting-User": buyer}
    async with http.post(f"{api.base}/me/cart/{slug}/items", headers=acting,
                         json={"sku": "sku-b"}) as resp:
        assert resp.status in (200, 201), await resp.text()
    async with http.post(f"{api.base}/me/orders", headers=acting, json={
            "shop": slug, "from_cart": True, "payment": "pickup",
            "delivery": {"kind": "pickup"}}) as resp:
        order = await resp.json()
        assert resp.status == 201, order
    # The order reaches the staff room after the answer: wait for it, so the snapshot holds
    # the order as it stays (its card waits for the buyer to join the shop's DM, never here).
    for _ in range(200):
        sent = network.rows("commerce", "SELECT staff_event_id FROM orders WHERE id=?",
                            order["id"])
        if sent[0][0]:
            break
        await asyncio.sleep(0.1)
    assert sent[0][0], sent
    status, log = await api.call("GET", f"/shops/{slug}/webhook/deliveries", key)
    assert status == 200 and log["deliveries"], log
    return order["id"], log["deliveries"][0]["event_id"]


async def test_shop_a_cannot_touch_shop_b(open_network: RunningNetwork, http, api: Api) -> None:
    owner_a = await new_user(open_network, http, "ownera")
    owner_b = await new_user(open_network, http, "ownerb")
    buyer = await new_user(open_network, http, "buyer")
    slug_a, key_a = await open_shop(api, owner_a.user_id)
    slug_b, key_b = await open_shop(api, owner_b.user_id)
    channel_b = f"#shop_{slug_b}:localhost"
    await buyer.join(channel_b)
    # B has something of everything: a product, a draft, a claimed coupon, a key.
    status, _ = await api.call("POST", f"/shops/{slug_b}/products", key_b, {
        "sku": "sku-b", "title": "B's mug", "price": "20.00", "currency": "EUR"})
    assert status == 201
    status, draft = await api.call("POST", f"/shops/{slug_b}/campaigns", key_b, {
        "kind": "text", "fields": {"title": "B's draft", "text": "Soon"}})
    assert status == 201
    status, coupon = await api.call("POST", f"/shops/{slug_b}/campaigns", key_b, {
        "kind": "coupon", "fields": {"title": "B's coupon"},
        "coupon": {"stock": 3, "expires_at": int(time.time() * 1000) + 86_400_000}})
    assert status == 201
    assert (await api.call("POST", f"/shops/{slug_b}/campaigns/{coupon['id']}/schedule",
                           key_b))[0] == 200
    claim_headers = {"Authorization": f"Bearer {open_network.config.commerce.service_token}",
                     "X-Mercato-Acting-User": buyer.user_id}
    for _ in range(100):
        async with http.post(f"{api.base}/coupons/{coupon['coupon_id']}/claim",
                             headers=claim_headers) as resp:
            claimed = await resp.json()
            if resp.status == 200:
                break
        await asyncio.sleep(0.1)
    assert claimed.get("sent_by_dm"), claimed
    code = open_network.rows("commerce", "SELECT code FROM coupon_code WHERE user_id=? AND "
                             "merchant_slug=?", buyer.user_id, slug_b)[0][0]
    order_id, event_id = await _order_of(api, open_network, http, slug_b, key_b, buyer.user_id)
    status, keys = await api.call("GET", f"/shops/{slug_b}/keys", key_b)
    names = {"slug": slug_b, "sku": "sku-b", "campaign_id": str(draft["id"]),
             "user_id": quote(owner_b.user_id), "key_id": keys["keys"][0]["key_id"],
             "attacker": owner_a.user_id, "code": code, "channel": channel_b,
             "order_id": order_id, "event_id": event_id,
             "expires": "2099-01-01T00:00:00Z"}

    before = await _snapshot(api, open_network, slug_b, "sku-b")
    service = open_network.config.commerce.service_token
    credentials = {"A's API key": {"Authorization": f"Bearer {key_a}"},
                   "A's owner via the bot": {"Authorization": f"Bearer {service}",
                                             "X-Mercato-Acting-User": owner_a.user_id}}
    tried = []
    assert NEW_FEATURE_ROUTES <= {(m, p) for m, p, _ in shop_routes()}
    for method, path, spec in shop_routes():
        url = api.base + _fill(path, names)
        assert "{" not in url, (method, path, "name a real value for it")
        raw = RAW_BODIES.get((method, path))
        body = None if raw is not None else _fill(BODIES.get(
            (method, path), {k: _placeholder(v) for k, v in (spec.body or {}).items()}), names)
        for who, headers in credentials.items():
            async with http.request(method, url, json=body, data=raw,
                                    headers=headers) as resp:
                answer = await resp.json(content_type=None)
                status = resp.status
            tried.append((who, method, path, status))
            if spec.auth == "none":
                # Public reads: A sees exactly what anyone sees, nothing private.
                async with http.request(method, url) as resp:
                    public = await resp.json(content_type=None)
                assert (status, answer) == (resp.status, public), (who, method, path)
                continue
            assert (status, answer.get("errcode")) == (403, "M_FORBIDDEN"), \
                (who, method, path, status, answer)
    assert await _snapshot(api, open_network, slug_b, "sku-b") == before
    # Every shop route was tried with both credentials.
    assert len(tried) == 2 * len(shop_routes())
    print(f"\nRESULT cross_merchant routes={len(shop_routes())} calls={len(tried)} "
          f"refused={sum(1 for t in tried if t[3] == 403)} changed=0")


@pytest.mark.parametrize("method, path, spec", shop_routes(),
                         ids=[f"{m} {p}" for m, p, _ in shop_routes()])
def test_every_shop_route_declares_who_may_call_it(method: str, path: str,
                                                   spec: Spec) -> None:
    """A shop route is public (a read) or needs staff or the operator: nothing else."""
    assert spec.auth in ("none", "staff", "operator"), (method, path, spec.auth)
    if spec.auth == "none":
        assert method == "GET", (method, path)
