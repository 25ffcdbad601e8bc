"""The appservice dies (like SIGKILL) between receiving a transaction and finishing it.

Four places, fault points in mercato/matrix/inbox.py and the commerce appservice:

- inbox.after_store: the transaction is stored but Synapse never got its 200, so
  Synapse sends it again after the restart; the inbox must not handle it twice.
- inbox.before_handle: stored and acknowledged, not handled: Synapse will not send it
  again, so the inbox must handle it after the restart.
- inbox.after_handle: handled, side effects done, not marked handled: it is handled
  again after the restart, and the side effects must not double.
- direct_room.created (in the handler): the shop's DM with the buyer is created but not
  yet recorded; the retried event must find that room, not open a second DM.

The event hit is a buyer's 🎟️ reaction that claims a coupon: its side effects are a
code (a row) and a DM from the shop (a Matrix message). A follow (the buyer joining
the channel) is handled just before it, across the crash.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import aiohttp
import pytest

from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.reliability.harness import Harness, posted_coupon, timeline, until

CLAIM = "🎟️"


@pytest.fixture(scope="module")
def inbox_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One Synapse for the three cases; each case restarts commerce with its fault."""
    running = Harness(tmp_path_factory.mktemp("inbox-crash"))
    running.start_synapse()
    running.start_commerce()
    try:
        yield running
    finally:
        running.stop_all()


def _handled(harness: Harness, event_id: str) -> list[tuple]:
    return harness.rows("SELECT handled_at FROM as_inbox WHERE event_id=?", event_id)


async def _quiet(harness: Harness, seconds: float = 2.0) -> None:
    """Wait until Synapse has stopped sending: no new transaction for `seconds`."""
    last, since = None, time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        count = harness.rows("SELECT COUNT(*) FROM as_transaction")[0][0]
        pending = harness.rows("SELECT COUNT(*) FROM as_inbox WHERE handled_at IS NULL")[0][0]
        if count != last or pending:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("Synapse kept sending transactions")


async def _rooms(client: MatrixClient) -> set[str]:
    """Every room the user is in or invited to, as a fresh client sees them."""
    client.next_batch = None
    sync = await client.sync()
    return set(sync.get("rooms", {}).get("join", {})) | set(
        sync.get("rooms", {}).get("invite", {}))


async def _dm_from(client: MatrixClient, sender: str) -> str:
    async def invited() -> str | None:
        sync = await client.sync(timeout_ms=500)
        for room_id, room in sync.get("rooms", {}).get("invite", {}).items():
            if any(e.get("sender") == sender for e in room.get("invite_state", {}).get(
                    "events", [])):
                return room_id
        return None

    room_id = await until(invited, 30, f"a DM invite from {sender}")
    await client.join(room_id)
    return room_id


@pytest.mark.parametrize("fault", ["inbox.after_store", "inbox.before_handle",
                                   "inbox.after_handle", "direct_room.created"])
async def test_crash_in_the_inbox_loses_and_doubles_nothing(inbox_harness: Harness,
                                                            fault: str) -> None:
    harness = inbox_harness
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as http:
        api = Api(harness, http)
        owner = await new_user(harness, http, "owner")
        follower = await new_user(harness, http, "follower")
        buyer = await new_user(harness, http, "buyer")
        slug, key = await open_shop(api, owner.user_id)
        shop = f"@shop_{slug}:localhost"
        room_id = await follower.join(f"#shop_{slug}:localhost")
        _, post = await posted_coupon(api, slug, key, follower, room_id)

        # Restart commerce with the fault armed for the 2nd transaction / event from now.
        await _quiet(harness)
        harness.stop_commerce()
        # After the handler: the reaction's own pass (DM events handled meanwhile in other
        # rooms would make a plain count ambiguous).
        plan = {"inbox.after_handle": "inbox.after_handle[m.reaction]=1",
                "direct_room.created": "direct_room.created=1"}.get(fault, f"{fault}=2")
        harness.start_commerce(env={"MERCATO_FAULTS": plan})
        await _quiet(harness)
        await buyer.join(room_id)
        await until(lambda: harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=?",
                                         buyer.user_id)[0][0] == 1, 20, "the follow recorded")
        reaction_id = await buyer.send(room_id, {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": post["event_id"], "key": CLAIM}},
            event_type="m.reaction")
        assert harness.commerce is not None
        await until(lambda: harness.commerce.poll() is not None, 20, f"the crash at {fault}")
        assert harness.commerce.returncode == 137

        # The crash hit this very event, at the planned place.
        codes = "SELECT COUNT(*) FROM coupon_code WHERE user_id=?"
        assert [row[0] is None for row in _handled(harness, reaction_id)] == [True], \
            "the reaction was stored before the crash and not marked handled"
        assert harness.rows(codes, buyer.user_id)[0][0] == (
            1 if fault in ("inbox.after_handle", "direct_room.created") else 0)

        harness.start_commerce()
        await until(lambda: [r[0] is not None for r in _handled(harness, reaction_id)]
                    == [True], 30, "the reaction handled after the restart")
        dm_room = await _dm_from(buyer, shop)
        await until(lambda: harness.rows(
            "SELECT COUNT(*) FROM outbound_message WHERE state='pending'")[0][0] == 0,
                    20, "the waiting DM delivered")
        # The shop's pinned menu is its own message, not an answer to the claim.
        messages = [e for e in await timeline(buyer, dm_room)
                    if e["type"] == "m.room.message" and e["sender"] == shop
                    and "org.mercato.menu" not in e["content"]]

        # Nothing lost, nothing doubled.
        assert harness.rows(codes, buyer.user_id)[0][0] == 1
        code = harness.rows("SELECT code FROM coupon_code WHERE user_id=?", buyer.user_id)[0][0]
        assert [re.findall(r"[A-Z2-9]{10}", m["content"]["body"]) for m in messages] == \
            [[code]], messages
        assert harness.rows("SELECT COUNT(*) FROM as_inbox WHERE event_id=?",
                            reaction_id)[0][0] == 1
        assert harness.rows("SELECT COUNT(*) FROM post_reaction WHERE reaction_event_id=?",
                            reaction_id)[0][0] == 1
        assert harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=?",
                            buyer.user_id)[0][0] == 1
        assert harness.rows("SELECT COUNT(*) FROM follow_log WHERE user_id=?",
                            buyer.user_id)[0][0] == 1
        # One DM from the shop, even when the crash came after creating it.
        client_rooms = await _rooms(buyer)
        assert client_rooms - {room_id} == {dm_room}, client_rooms
        channel_posts = [e for e in await timeline(follower, room_id)
                         if "org.mercato.post" in e.get("content", {})]
        assert len(channel_posts) == 1
        if fault == "inbox.after_store":
            # Synapse did send the transaction again, and it was recognised.
            async with http.get(f"{harness.commerce_url}/metrics") as resp:
                metrics = await resp.text()
            assert re.search(r'mercato_as_transactions_total\{component="commerce",'
                             r'outcome="duplicate"\} [1-9]', metrics), \
                "the resent transaction should have been recognised as a duplicate"
        print(f"\nRESULT fault={fault} lost=0 doubled=0 code_messages={len(messages)}")
