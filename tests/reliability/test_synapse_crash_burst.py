"""Synapse dies during a burst of support relays, card shares and coupon DMs: none lost,
none doubled.

Every message commerce sends goes through its outbox (mercato/matrix/outbox.py). Here
Synapse is SIGKILLed at the worst moment — it has persisted one of the burst's messages
but its answer never reaches commerce (the proxy of test_synapse_crash.py) — while
staff answers, buyer messages, card shares and coupon DMs are on their way, and restarted
a few seconds later. Synapse's transaction-ID cache is gone with it, so only the outbox
(attempt recorded first, then a look in the room for the message's marker) stands
between a retry and a doubled message. Checked as the users see it, through /messages.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from aiohttp import web

from tests.integration.commerce_api import accept_invite, is_threaded_in, thread_reply
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.integration.test_support_inbox import open_conversation, thread_root
from tests.reliability.harness import Harness, posted_coupon, tail, timeline, until
from tests.reliability.test_synapse_crash import DOWN_SECONDS, FaultyProxy

CLAIM = "🎟️"
BUYERS = 3
SHARES = 3
KILL_ON = 4  # the burst's 4th message send


class GatedProxy(FaultyProxy):
    """The crash proxy, able to hold commerce's message sends back until the whole burst
    is queued (the users' own requests go to Synapse directly and must not meet it dead)."""

    def __init__(self, harness: Harness) -> None:
        super().__init__(harness, 10**9, signal.SIGKILL, txn_prefix="mercato.")
        self.gate = asyncio.Event()
        self.gate.set()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if request.method == "PUT" and "/send/m.room.message/mercato." in request.path:
            await self.gate.wait()
        return await super().forward(request)


def _sent_by(events: list[dict[str, Any]], sender: str) -> list[str]:
    return [e["content"].get("body", "") for e in events
            if e["type"] == "m.room.message" and e["sender"] == sender]


async def test_synapse_killed_during_a_burst_of_relays_shares_and_coupon_dms(
        harness: Harness, http: Any) -> None:
    proxy = GatedProxy(harness)
    async with harness.commerce_behind(proxy):
        await _burst_through_a_crash(harness, http, proxy)


async def _burst_through_a_crash(harness: Harness, http: Any, proxy: GatedProxy) -> None:
    api = Api(harness, http)
    owner = await new_user(harness, http, "owner")
    slug, key = await open_shop(api, owner.user_id, quota=20)
    shop = f"@shop_{slug}:localhost"
    channel = await owner.join(f"#shop_{slug}:localhost")
    status, details = await api.call("GET", f"/shops/{slug}", key)
    assert status == 200, details
    staff_room = details["staff_room_id"]
    await accept_invite(owner, staff_room)
    status, product = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "mug", "title": "Mug", "price": "24.00", "currency": "EUR"})
    assert status == 201, product
    buyers = [await new_user(harness, http, f"buyer{n}") for n in range(BUYERS)]
    for buyer in buyers:
        await buyer.join(channel)
    _, post = await posted_coupon(api, slug, key, owner, channel)
    dms = [await open_conversation(buyer, shop) for buyer in buyers]
    await buyers[0].send_text(dms[0], "Hello?")
    root = await thread_root(owner, staff_room, shop, buyers[0].user_id)

    # The burst, queued while commerce's sends are held back; then the Synapse kill falls
    # on its KILL_ON-th message send.
    proxy.gate.clear()
    answers = [f"Answer {n}" for n in range(3)]
    questions = [f"Question {n}" for n in range(3)]
    for answer in answers:
        await owner.send(staff_room, thread_reply(root, answer, root))
    for question in questions:
        await buyers[0].send_text(dms[0], question)
    for buyer in buyers:
        await buyer.send(channel, {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": post["event_id"], "key": CLAIM}},
            event_type="m.reaction")
    shares = [asyncio.create_task(api.call("POST", f"/shops/{slug}/products/mug/share", key,
                                           {"room_id": channel})) for _ in range(SHARES)]
    await until(lambda: harness.rows("SELECT COUNT(*) FROM coupon_code")[0][0] == BUYERS
                and harness.rows("SELECT COUNT(*) FROM outbound_message WHERE kind='card_share'"
                                 )[0][0] == SHARES, 60, "the burst queued")
    proxy.fault_on = proxy.sends + KILL_ON
    proxy.gate.set()
    try:
        await until(proxy.faulted.is_set, 60, f"message send {KILL_ON} of the burst")
    except AssertionError as e:
        raise AssertionError(f"{e}; saw {proxy.sends} sends; commerce log:\n"
                             f"{tail(harness.commerce_log_path)}") from None
    await asyncio.sleep(DOWN_SECONDS)
    await asyncio.to_thread(harness.start_synapse)
    for share in shares:
        status, _ = await share
        assert status == 200

    try:
        await until(lambda: harness.rows(
            "SELECT COUNT(*) FROM outbound_message WHERE state != 'sent'")[0][0] == 0
            and harness.rows("SELECT COUNT(*) FROM coupon_code WHERE dm_event_id IS NOT NULL"
                             )[0][0] == BUYERS, 120, "every message sent")
        await owner.wait_for_message(staff_room, lambda e: is_threaded_in(root)(e) and
                                     e["content"].get("body", "").endswith(questions[-1]))
    except AssertionError as e:
        raise AssertionError(f"{e}; commerce log:\n{tail(harness.commerce_log_path, 60)}") \
            from None
    await asyncio.sleep(2)  # a late resend would show now

    # Through a real client's /messages: each message exactly once.
    in_dm = _sent_by(await timeline(buyers[0], dms[0]), shop)
    assert [in_dm.count(a) for a in answers] == [1, 1, 1], in_dm
    relayed = _sent_by(await timeline(owner, staff_room), shop)
    assert [relayed.count(f"{buyers[0].user_id}: {q}") for q in questions] == [1, 1, 1], \
        relayed
    cards = [e for e in await timeline(owner, channel) if e["sender"] == shop and
             "org.mercato.product" in e.get("content", {})]
    assert len(cards) == SHARES, cards
    codes = {row[0] for row in harness.rows("SELECT code FROM coupon_code")}
    assert len(codes) == BUYERS
    for buyer in buyers:
        room_ids = harness.rows("SELECT dm_room_id FROM coupon_code WHERE user_id=?",
                                buyer.user_id)
        got = [b for b in _sent_by(await timeline(buyer, room_ids[0][0]), shop)
               if any(code in b for code in codes)]
        assert len(got) == 1, got
    print(f"\nRESULT synapse_kill=SIGKILL burst relays={len(answers) + len(questions)} "
          f"shares={SHARES} coupon_dms={BUYERS} lost=0 doubled=0 "
          f"adopted={len(harness.logged('send.adopted'))}")
