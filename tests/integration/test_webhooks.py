"""A shop's back-end hears of its events (issue 17, webhooks): the owner sets an https://
endpoint through the API and gets its secret once; events recorded in the commerce
database reach a real HTTPS receiver signed with it, in order; the delivery log shows each
try; an event resent keeps its ID; a rotated secret signs what follows; another shop's key
can do none of it, and an address that is not https:// is refused with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.webhooks import record_event
from mercato.db import open_database, transaction
from mercato.types import MerchantSlug
from mercato_ops.testnet import RunningNetwork
from tests.integration.local_https import Certificate
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.integration.webhook_receiver import WebhookReceiver


@pytest.fixture
async def receiver(shop_certificate: Certificate) -> AsyncIterator[WebhookReceiver]:
    running = await WebhookReceiver(shop_certificate).start()
    try:
        yield running
    finally:
        await running.stop()


async def shop_of_new_owner(api: Api, network: RunningNetwork,
                            http: aiohttp.ClientSession) -> tuple[str, str]:
    owner = await new_user(network, http, "hookowner")
    return await open_shop(api, owner.user_id)


async def record(network: RunningNetwork, slug: str, event_type: str, order: str,
                 step: int) -> str:
    """What the orders feature does: an event recorded in its own transaction."""
    db = open_database(network.config.database_url("commerce"), upgrade_table, "commerce")
    await db.start()
    try:
        async with transaction(db) as conn:
            event_id = await record_event(conn, MerchantSlug(slug), event_type, order,
                                          {"order_id": order, "step": step})
    finally:
        await db.stop()
    assert event_id is not None
    return event_id


async def deliveries(api: Api, slug: str, key: str, query: str = "") -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/shops/{slug}/webhook/deliveries{query}", key)
    assert status == 200, body
    return list(body["deliveries"])


async def settled(api: Api, slug: str, key: str, event_id: str) -> dict[str, Any]:
    """The event's line in the log once its latest try is over."""
    for _ in range(100):
        line = {d["event_id"]: d for d in await deliveries(api, slug, key)}[event_id]
        if line["status"] != "pending" or line["last_status_code"] or line["last_error"]:
            return line
        await asyncio.sleep(0.1)
    raise AssertionError(f"{event_id} was not tried")


async def test_the_back_end_gets_signed_events_in_order_and_the_shop_reads_the_log(
        api: Api, network: RunningNetwork, http: aiohttp.ClientSession,
        receiver: WebhookReceiver) -> None:
    slug, key = await shop_of_new_owner(api, network, http)
    status, hook = await api.call("PUT", f"/shops/{slug}/webhook", key, {"url": receiver.url})
    assert status == 200, hook
    assert hook["url"] == receiver.url and hook["events"] is None
    assert hook["secret"].startswith("whsec_")
    receiver.secret = hook["secret"]
    status, shown = await api.call("GET", f"/shops/{slug}/webhook", key)
    assert status == 200 and shown["url"] == receiver.url and "secret" not in shown

    placed = await record(network, slug, "order.placed", "o-1", 0)
    paid = await record(network, slug, "order.paid", "o-1", 1)
    await receiver.wait_for(2)
    assert receiver.processed_ids == [placed, paid]
    assert receiver.processed[0]["shop"] == slug
    assert receiver.processed[0]["type"] == "order.placed"
    assert receiver.processed[0]["data"] == {"order_id": "o-1", "step": 0}
    line = await settled(api, slug, key, paid)
    assert line["status"] == "delivered" and line["attempts"] == 1
    assert line["last_status_code"] == 200 and line["delivered_at"] and line["subject"] == "o-1"
    assert line["next_attempt_at"] is None
    assert [d["event_id"] for d in await deliveries(api, slug, key, "?status=delivered")] == \
        [paid, placed]  # newest first
    assert await deliveries(api, slug, key, "?status=failed") == []
    assert len(await deliveries(api, slug, key, "?limit=1")) == 1
    first_page = await deliveries(api, slug, key, "?limit=1")
    assert [d["event_id"] for d in await deliveries(
        api, slug, key, f"?before={first_page[0]['id']}")] == [placed]

    # Resent: the same event ID again; the receiver's dedupe keeps it processed once.
    status, body = await api.call("POST", f"/shops/{slug}/webhook/deliveries/{placed}/resend",
                                  key)
    assert status == 200 and body == {"event_id": placed, "status": "pending"}, body
    for _ in range(100):
        if receiver.arrivals.count(placed) == 2:
            break
        await asyncio.sleep(0.1)
    assert receiver.arrivals.count(placed) == 2 and receiver.processed_ids == [placed, paid]

    # A new secret signs from now on: a receiver still on the old one refuses the next event,
    # and the log says so; once it has the new secret, a resend gets through.
    status, rotated = await api.call("POST", f"/shops/{slug}/webhook/secret", key)
    assert status == 200 and rotated["secret"] != hook["secret"], rotated
    shipped = await record(network, slug, "order.shipped", "o-1", 2)
    refused = await settled(api, slug, key, shipped)
    assert refused["status"] == "pending" and refused["last_status_code"] == 400
    assert "bad signature" in refused["last_error"] and refused["next_attempt_at"]
    receiver.secret = rotated["secret"]
    assert (await api.call("POST", f"/shops/{slug}/webhook/deliveries/{shipped}/resend",
                           key))[0] == 200
    await receiver.wait_for(3)
    assert receiver.processed_ids == [placed, paid, shipped]

    status, gone = await api.call("DELETE", f"/shops/{slug}/webhook", key)
    assert status == 200 and gone == {"cancelled": 0}, gone
    status, missing = await api.call("GET", f"/shops/{slug}/webhook", key)
    assert status == 404 and "has no webhook" in missing["error"], missing
    audit = (await api.call("GET", f"/shops/{slug}/audit", key))[1]["entries"]
    assert {"webhook_set", "webhook_resent", "webhook_secret_rotated", "webhook_removed"} <= {
        e["action"] for e in audit}


async def test_another_shops_key_cannot_read_or_set_a_webhook(
        api: Api, network: RunningNetwork, http: aiohttp.ClientSession,
        receiver: WebhookReceiver) -> None:
    slug, key = await shop_of_new_owner(api, network, http)
    _, other_key = await shop_of_new_owner(api, network, http)
    assert (await api.call("PUT", f"/shops/{slug}/webhook", key, {"url": receiver.url}))[0] == 200
    for method, path, body in [
            ("PUT", "/webhook", {"url": receiver.url.replace("events", "stolen")}),
            ("GET", "/webhook", None), ("DELETE", "/webhook", None),
            ("POST", "/webhook/secret", None), ("GET", "/webhook/deliveries", None),
            ("POST", "/webhook/deliveries/evt_x/resend", None)]:
        status, answer = await api.call(method, f"/shops/{slug}{path}", other_key, body)
        assert status == 403, (method, path, answer)
        assert answer["errcode"] == "M_FORBIDDEN"
        assert answer["error"] == f"You are not staff of the shop '{slug}'."
    # Staff of the shop itself whose role is not owner may not either.
    status, editor = await api.call("POST", f"/shops/{slug}/keys", key,
                                    {"label": "catalog", "role": "editor"})
    assert status == 201, editor
    status, answer = await api.call("GET", f"/shops/{slug}/webhook", editor["key"])
    assert status == 403 and "may not manage webhooks" in answer["error"], answer
    status, shown = await api.call("GET", f"/shops/{slug}/webhook", key)
    assert shown["url"] == receiver.url  # unchanged


@pytest.mark.parametrize("body, says", [
    ({"url": "http://shop.example/hooks"}, "url: must be an absolute https:// address"),
    ({"url": "shop.example/hooks"}, "url: must be an absolute https:// address"),
    ({"url": "https://me@shop.example/hooks"}, "url: must not contain a user name"),
    ({}, "url: is required"),
    ({"url": "https://shop.example/hooks", "events": "order.paid"}, "events: must be a list"),
])
async def test_an_address_that_cannot_be_used_is_refused_with_the_reason(
        api: Api, network: RunningNetwork, http: aiohttp.ClientSession,
        body: dict[str, Any], says: str) -> None:
    slug, key = await shop_of_new_owner(api, network, http)
    status, answer = await api.call("PUT", f"/shops/{slug}/webhook", key, body)
    assert status == 422, answer
    assert answer["errcode"] == "MERCATO_INVALID" and answer["error"].startswith(says), answer
    assert (await api.call("GET", f"/shops/{slug}/webhook", key))[0] == 404
