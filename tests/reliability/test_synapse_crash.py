"""Synapse dies mid-campaign and is restarted: exactly one post per (campaign, room).

The kill is placed at the worst moment for exactly-once: Synapse has persisted a
post but its answer never reaches the appservice. To place it there every time,
commerce reaches Synapse's client API through a small proxy in the test: on the
Nth campaign send it lets Synapse answer, kills Synapse (SIGKILL or SIGTERM), and
drops the connection instead of passing the answer on. While Synapse is down the
proxy drops every connection, as a dead server would. Synapse's transaction-ID
cache lives in memory, so after the restart only the outbox's own bookkeeping
(attempt recorded first, then a look in the room for the post's marker) stands
between a resend and a doubled post.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mercato_ops.testnet import free_port
from tests.integration.commerce_api import CommerceApi, is_threaded_in, thread_reply
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.integration.test_support_inbox import open_conversation, staffed_shop, thread_root
from tests.reliability.harness import (
    Harness,
    check_exactly_once_in_order,
    draft,
    draft_rounds,
    posts_in,
    schedule,
    tail,
    timeline,
    until,
    wait_all_sent,
)

SHOPS = 3
CAMPAIGNS_PER_SHOP = 3
KILL_ON_SEND = 4  # of SHOPS * CAMPAIGNS_PER_SHOP
DOWN_SECONDS = 3
HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


class FaultyProxy:
    """Commerce → proxy → Synapse. On the `fault_on`-th campaign send it either kills
    Synapse between its answer and commerce (`sig`), or, with `sig` None, answers that
    one request with a 500 before Synapse sees it (a transient failure)."""

    def __init__(self, harness: Harness, fault_on: int, sig: int | None,
                 txn_prefix: str = "mercato.outbox.") -> None:
        self.harness = harness
        self.txn_prefix = txn_prefix
        self.fault_on = fault_on
        self.sig = sig
        self.sends = 0
        self.faulted = asyncio.Event()
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=502)  # never reaches the client

    async def forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        is_post = request.method == "PUT" and \
            f"/send/m.room.message/{self.txn_prefix}" in request.path
        number = 0
        if is_post:
            self.sends += 1
            number = self.sends  # sends run concurrently: remember which one this is
            if self.sig is None and number == self.fault_on:
                self.faulted.set()
                return web.json_response({"errcode": "M_UNKNOWN", "error": "hiccup"},
                                         status=500)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            async with self._session.request(
                    request.method, f"{self.harness.hs_url}{request.path_qs}", data=body,
                    headers=headers) as upstream:
                data = await upstream.read()
                status, content_type = upstream.status, upstream.content_type
        except aiohttp.ClientError:
            return self._drop(request)  # Synapse is down: so is this connection
        if number == self.fault_on and self.sig is not None:
            assert status == 200, data
            synapse = self.harness.synapse
            assert synapse is not None
            synapse.send_signal(self.sig)
            await asyncio.to_thread(synapse.wait, 60)
            self.faulted.set()
            return self._drop(request)
        return web.Response(status=status, body=data, content_type=content_type)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_synapse_killed_mid_campaign_one_post_per_room(harness: Harness, http,
                                                             sig: int) -> None:
    proxy = FaultyProxy(harness, KILL_ON_SEND, sig)
    async with harness.commerce_behind(proxy):
        await _campaign_through_a_crash(harness, http, proxy)


async def _campaign_through_a_crash(harness: Harness, http: Any, proxy: FaultyProxy) -> None:
    api = Api(harness, http)
    owner = await new_user(harness, http, "owner")
    follower = await new_user(harness, http, "follower")
    shops = [await open_shop(api, owner.user_id, quota=20) for _ in range(SHOPS)]
    rooms = {slug: await follower.join(f"#shop_{slug}:localhost") for slug, _ in shops}
    order, campaigns = await draft_rounds(api, shops, CAMPAIGNS_PER_SHOP)
    for n in range(CAMPAIGNS_PER_SHOP):
        for slug, key in shops:
            await schedule(api, slug, key, order[slug][n])

    try:
        await until(proxy.faulted.is_set, 60, f"send {KILL_ON_SEND}")
    except AssertionError as e:
        raise AssertionError(f"{e}; saw {proxy.sends} sends; commerce log:\n"
                             f"{tail(harness.commerce_log_path)}") from None
    await asyncio.sleep(DOWN_SECONDS)
    await asyncio.to_thread(harness.start_synapse)
    try:
        await wait_all_sent(api, campaigns, 90)
    except AssertionError as e:
        raise AssertionError(f"{e}; commerce log:\n{tail(harness.commerce_log_path)}") \
            from None
    # A last look after the outbox is done: a late resend would show up now.
    await asyncio.sleep(2)

    posts = {room_id: await posts_in(follower, room_id) for room_id in rooms.values()}
    expected = {rooms[slug]: ids for slug, ids in order.items()}
    lost, doubled = check_exactly_once_in_order(posts, expected)
    for room_id in rooms.values():
        event_ids = [e["event_id"] for e in await timeline(follower, room_id)]
        assert len(event_ids) == len(set(event_ids))
    # The post whose answer was lost was found in its room, not sent again.
    assert harness.logged("send.adopted"), "the post Synapse persisted should be adopted"
    outbox = harness.rows("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM outbox "
                          "WHERE state='sent'")[0]
    assert outbox == (SHOPS * CAMPAIGNS_PER_SHOP,) * 2
    print(f"\nRESULT synapse_kill={signal.Signals(proxy.sig).name} "
          f"posts={SHOPS * CAMPAIGNS_PER_SHOP} killed_at_send={KILL_ON_SEND} "
          f"lost={lost} doubled={doubled} adopted={len(harness.logged('send.adopted'))}")


async def test_a_failed_send_keeps_the_room_order(harness: Harness, http) -> None:
    """One send fails once (it never reached Synapse): the room's later posts wait for it."""
    proxy = FaultyProxy(harness, 1, None)
    async with harness.commerce_behind(proxy):
        api = Api(harness, http)
        owner = await new_user(harness, http, "owner")
        follower = await new_user(harness, http, "follower")
        slug, key = await open_shop(api, owner.user_id, quota=20)
        room_id = await follower.join(f"#shop_{slug}:localhost")
        order = [await draft(api, slug, key, f"Post {n}", f"number {n}") for n in range(3)]
        # All three fall due in the same pass of the outbox.
        due = int(time.time() * 1000) + 1500
        for campaign_id in order:
            await schedule(api, slug, key, campaign_id, due)
        await until(proxy.faulted.is_set, 30, "the first send")
        await wait_all_sent(api, dict.fromkeys(order, slug), 30)
        posts = {room_id: await posts_in(follower, room_id)}
        lost, doubled = check_exactly_once_in_order(posts, {room_id: order})
        assert harness.logged("outbox.send_failed")
        print(f"\nRESULT transient_send_failure posts=3 lost={lost} doubled={doubled} "
              f"order={posts[room_id]}")


async def test_synapse_killed_while_relaying_a_staff_answer(harness: Harness, http) -> None:
    """Not only campaigns: a customer-service answer whose send Synapse persisted but never
    acknowledged (killed) reaches the buyer once after the restart, not twice."""
    proxy = FaultyProxy(harness, 1, signal.SIGKILL, txn_prefix="mercato.cs.out.")
    async with harness.commerce_behind(proxy):
        api = CommerceApi(harness, http)  # type: ignore[arg-type]
        owner = await new_user(harness, http, "owner")
        buyer = await new_user(harness, http, "buyer")
        _, shop, staff_room = await staffed_shop(api, owner, "relay")
        dm = await open_conversation(buyer, shop)
        await buyer.send_text(dm, "Is the red one in stock?")
        root = await thread_root(owner, staff_room, shop, buyer.user_id)
        answer = "Yes, three left."
        await owner.send(staff_room, thread_reply(root, answer, root))
        await until(proxy.faulted.is_set, 30, "the relay of the answer")
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(harness.start_synapse)
        await until(lambda: harness.logged("send.adopted"), 60,
                    "commerce finding the answer Synapse had saved")
        await buyer.send_text(dm, "Thanks!")  # handled after the answer (one room, in order)
        try:
            await owner.wait_for_message(staff_room, lambda e: is_threaded_in(root)(e) and
                                         e["content"]["body"] == f"{buyer.user_id}: Thanks!")
        except AssertionError as e:
            raise AssertionError(f"{e}; commerce log:\n{tail(harness.commerce_log_path, 60)}") \
                from None
        relayed = [e for e in await timeline(buyer, dm)
                   if e["type"] == "m.room.message" and e["sender"] == shop and
                   e["content"].get("body") == answer]
        assert len(relayed) == 1, relayed
        print(f"\nRESULT synapse_kill=SIGKILL relay answers={len(relayed)} lost=0 doubled=0")
