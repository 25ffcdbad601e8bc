"""The customer-service inbox: auto-replies, one thread per buyer, who may answer."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp

from appservices.commerce.shops.rules import DAYS
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient, MatrixError
from tests.integration.commerce_api import (
    CommerceApi,
    accept_invite,
    commerce_rows,
    from_sender,
    is_threaded_in,
    joined,
    new_user,
    open_shop,
    thread_reply,
    unique_slug,
)


async def staffed_shop(api: CommerceApi, owner: MatrixClient, prefix: str,
                       **settings: Any) -> tuple[str, str, str]:
    """An approved shop whose owner sits in the staff room: (slug, shop user, staff room)."""
    slug = await open_shop(api, owner.user_id, prefix)
    if settings:
        patched = await api.patch(f"/shops/{slug}", api.acting_as(owner.user_id), settings)
        assert patched.status == 200, patched
    staff_room = (await api.shop(slug))["staff_room_id"]
    await accept_invite(owner, staff_room)
    return slug, f"@shop_{slug}:localhost", staff_room


async def open_conversation(buyer: MatrixClient, shop: str) -> str:
    dm = await buyer.create_dm(shop)
    await buyer.wait_for_message(dm, joined(shop))
    return dm


async def thread_root(staff: MatrixClient, staff_room: str, shop: str, buyer: str) -> str:
    root = await staff.wait_for_message(
        staff_room, from_sender(shop, contains=f"New conversation with {buyer}."))
    return root["event_id"]


async def inbox_handled(network: RunningNetwork, room_id: str, events: int,
                        timeout: float = 30.0) -> None:
    """Wait until the commerce appservice has handled `events` events of the room."""
    deadline = time.monotonic() + timeout
    while True:
        rows = commerce_rows(network, "SELECT COUNT(*) FROM as_inbox WHERE room_id=? AND "
                             "handled_at IS NOT NULL AND NOT failed", room_id)
        if rows[0][0] >= events:
            return
        assert time.monotonic() < deadline, f"commerce handled {rows[0][0]} events of {room_id}"
        await asyncio.sleep(0.2)


def closed_today() -> dict[str, Any]:
    """Opening hours that keep the shop closed all of today (it opens tomorrow only)."""
    tomorrow = DAYS[(datetime.now(UTC) + timedelta(days=1)).weekday()]
    return {"timezone": "UTC", tomorrow: ["09:00-17:00"]}


def bodies(events: list[dict[str, Any]], sender: str) -> list[str]:
    """What `sender` said, the shop's pinned menu left out (test_shop_menu.py reads it)."""
    return [e["content"].get("body", "") for e in events
            if e["type"] == "m.room.message" and e["sender"] == sender
            and "org.mercato.menu" not in e["content"]]


async def test_auto_replies(network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    welcome = "Hi! Thanks for writing to us."
    away = "We are closed now; we answer tomorrow from 9:00."
    hours = closed_today()
    slug, shop, staff_room = await staffed_shop(
        api, owner, "auto", welcome_message=welcome, away_message=away,
        opening_hours=hours,
        keyword_replies=[{"keyword": "delivery", "reply": "We deliver in 2 days."},
                         {"keyword": "gift card", "reply": "Gift cards are sold in store."}])
    settings = await api.shop(slug)
    assert settings["opening_hours"] == hours
    assert settings["keyword_replies"][0] == {"keyword": "delivery",
                                              "reply": "We deliver in 2 days."}
    buyer = await new_user(network, http, "buyer")
    dm = await open_conversation(buyer, shop)

    # First contact: welcome and away message, both mirrored into the buyer's thread.
    await buyer.send_text(dm, "Hello there")
    await buyer.wait_for_message(dm, from_sender(shop, body=welcome))
    await buyer.wait_for_message(dm, from_sender(shop, body=away))
    root = await thread_root(owner, staff_room, shop, buyer.user_id)
    for kind, text in (("welcome", welcome), ("away", away)):
        mirror = await owner.wait_for_message(
            staff_room, lambda e, k=kind, t=text: is_threaded_in(root)(e)
            and e["content"]["body"] == f"↪ {k} auto-reply sent: {t}")
        assert mirror["content"]["msgtype"] == "m.notice"

    # A keyword (any case, as a whole word) gets its reply; welcome and away are not repeated.
    await buyer.send_text(dm, "Do you do DELIVERY to Lyon?")
    await buyer.wait_for_message(dm, from_sender(shop, body="We deliver in 2 days."))
    await buyer.send_text(dm, "And a gift card?")
    await buyer.wait_for_message(dm, from_sender(shop, body="Gift cards are sold in store."))
    await buyer.send_text(dm, "deliveryman is not a keyword")
    await owner.wait_for_message(staff_room, lambda e: is_threaded_in(root)(e) and e[
        "content"]["body"] == f"{buyer.user_id}: deliveryman is not a keyword")
    # The DM's events are handled in order, so every earlier reply has been sent by now.
    assert bodies(await buyer.messages(dm), shop) == [
        welcome, away, "We deliver in 2 days.", "Gift cards are sold in store."]


async def test_each_buyer_gets_a_thread(network: RunningNetwork,
                                        http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug, shop, staff_room = await staffed_shop(api, owner, "threads")
    first, second = (await new_user(network, http, "first"),
                     await new_user(network, http, "second"))
    first_dm = await open_conversation(first, shop)
    second_dm = await open_conversation(second, shop)
    await first.send_text(first_dm, "Question from the first buyer")
    await second.send_text(second_dm, "Question from the second buyer")
    first_root = await thread_root(owner, staff_room, shop, first.user_id)
    second_root = await thread_root(owner, staff_room, shop, second.user_id)
    assert first_root != second_root
    await owner.wait_for_message(staff_room, lambda e: is_threaded_in(second_root)(e)
                                 and "Question from the second buyer" in e["content"]["body"])

    # Staff talking among themselves (outside a thread) reaches no buyer.
    await owner.send_text(staff_room, "Who takes these two?")
    await owner.send(staff_room, thread_reply(second_root, "Answer for the second", second_root))
    await owner.send(staff_room, thread_reply(first_root, "Answer for the first", first_root))
    await first.wait_for_message(first_dm, from_sender(shop, body="Answer for the first"))
    await second.wait_for_message(second_dm, from_sender(shop, body="Answer for the second"))
    assert bodies(await first.messages(first_dm), shop) == ["Answer for the first"]
    assert bodies(await second.messages(second_dm), shop) == ["Answer for the second"]
    assert commerce_rows(network, "SELECT COUNT(*) FROM support_thread WHERE merchant_slug=?",
                         slug) == [(2,)]

    # A message sent twice into a thread (say, edited) is relayed once per event.
    html = {"msgtype": "m.text", "body": "Bold offer",
            "format": "org.matrix.custom.html",
            "formatted_body": "<b>Bold</b> offer<script>alert(1)</script>",
            "m.relates_to": {"rel_type": "m.thread", "event_id": first_root,
                             "is_falling_back": True, "m.in_reply_to": {"event_id": first_root}}}
    await owner.send(staff_room, html)
    got = await first.wait_for_message(first_dm, from_sender(shop, body="Bold offer"))
    assert got["content"]["formatted_body"] == "<b>Bold</b> offer"


async def test_only_support_roles_answer_buyers(network: RunningNetwork,
                                                http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug, shop, staff_room = await staffed_shop(api, owner, "analyst")
    analyst = await new_user(network, http, "analyst")
    added = await api.add_staff(slug, api.acting_as(owner.user_id), analyst.user_id, "analyst")
    assert added.status == 201, added
    await accept_invite(analyst, staff_room)

    buyer = await new_user(network, http, "buyer")
    dm = await open_conversation(buyer, shop)
    await buyer.send_text(dm, "Can I get a refund?")
    root = await thread_root(owner, staff_room, shop, buyer.user_id)

    attempt = await analyst.send(staff_room, thread_reply(root, "Sure, no problem!", root))
    notice = await analyst.wait_for_message(
        staff_room, lambda e: e["sender"] == shop and e["content"].get(
            "m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == attempt)
    assert notice["content"]["msgtype"] == "m.notice"
    assert notice["content"]["body"] == (f"Not sent: {analyst.user_id} is analyst and may not "
                                         "answer buyers.")
    assert notice["content"]["m.relates_to"]["rel_type"] == "m.thread"
    assert notice["content"]["m.relates_to"]["event_id"] == root

    # The owner's answer, sent after, arrives; the analyst's never does.
    await owner.send(staff_room, thread_reply(root, "Yes, within 14 days.", root))
    await buyer.wait_for_message(dm, from_sender(shop, body="Yes, within 14 days."))
    assert bodies(await buyer.messages(dm), shop) == ["Yes, within 14 days."]

    # Someone removed from the staff cannot answer either (they are out of the room).
    assert (await api.remove_staff(slug, api.acting_as(owner.user_id),
                                   analyst.user_id)).status == 200
    try:
        await analyst.send(staff_room, thread_reply(root, "Still here", root))
        raise AssertionError("a removed staff member could still post in the staff room")
    except MatrixError as e:
        assert e.status == 403


async def test_shop_that_is_not_open_ignores_conversations(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    api = CommerceApi(network, http)
    owner = await new_user(network, http, "owner")
    slug = unique_slug("pending")
    await api.apply(owner.user_id, slug, f"Pending {slug[-8:]}")
    shop = f"@shop_{slug}:localhost"
    buyer = await new_user(network, http, "buyer")
    dm = await buyer.create_dm(shop)
    await inbox_handled(network, dm, events=1)  # the shop's invite
    # The pending shop has no Matrix user yet, and an invite must not create one: else
    # anyone could make @shop_<any name> exist.
    members = await buyer.request("GET", f"/_matrix/client/v3/rooms/{quote(dm)}/members")
    assert {e["state_key"]: e["content"]["membership"] for e in members["chunk"]} == \
        {buyer.user_id: "join", shop: "invite"}
    try:
        await buyer.request("GET", f"/_matrix/client/v3/profile/{quote(shop)}")
        raise AssertionError("a pending shop got a Matrix user")
    except MatrixError as e:
        assert e.status == 404
    assert commerce_rows(network, "SELECT COUNT(*) FROM support_thread WHERE merchant_slug=?",
                         slug) == [(0,)]
