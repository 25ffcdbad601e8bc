"""A handler runs longer than Synapse's 60 s appservice request timeout.

Synapse gives up on a transaction that gets no answer within 60 s and sends it
again. The inbox answers as soon as the transaction is stored, so a slow handler
never holds an answer back: nothing is resent, nothing is handled twice. While the
slow event (a buyer's 🎟️ reaction claiming a coupon) is stuck, events of other rooms
go on being handled; the reaction's room keeps its order.

The stall is a fault point (`inbox.slow_handle=N:SECONDS`, mercato/faults.py).
"""

from __future__ import annotations

import re
import time

from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.reliability.harness import Harness, posted_coupon, timeline, until
from tests.reliability.test_inbox_crash import CLAIM, _dm_from, _quiet

STALL_SECONDS = 65  # past Synapse's 60 s timeout for appservice transactions


async def test_a_handler_slower_than_synapses_timeout_loses_and_doubles_nothing(
        harness: Harness, http) -> None:
    harness.start_synapse()
    harness.start_commerce()
    api = Api(harness, http)
    owner = await new_user(harness, http, "owner")
    follower = await new_user(harness, http, "follower")
    buyer = await new_user(harness, http, "buyer")
    (slug, key), (other_slug, _) = [await open_shop(api, owner.user_id) for _ in range(2)]
    shop = f"@shop_{slug}:localhost"
    room_id = await follower.join(f"#shop_{slug}:localhost")
    _, post = await posted_coupon(api, slug, key, follower, room_id)

    # From the restart on: the 1st event is the buyer's follow, the 2nd the reaction.
    await _quiet(harness)
    harness.stop_commerce()
    harness.start_commerce(env={"MERCATO_FAULTS": f"inbox.slow_handle=2:{STALL_SECONDS}"})
    await _quiet(harness)
    await buyer.join(room_id)
    await until(lambda: harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=?",
                                     buyer.user_id)[0][0] == 1, 20, "the follow recorded")
    reaction_id = await buyer.send(room_id, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": post["event_id"], "key": CLAIM}},
        event_type="m.reaction")
    stalled_at = time.monotonic()
    await until(lambda: harness.rows("SELECT COUNT(*) FROM as_inbox WHERE event_id=?",
                                     reaction_id)[0][0] == 1, 20, "the reaction stored")

    # While it is stuck: another room's event is handled, this room's next one waits.
    other_room = await buyer.join(f"#shop_{other_slug}:localhost")
    await until(lambda: harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=? AND "
                                     "room_id=?", buyer.user_id, other_room)[0][0] == 1,
                15, "another room's follow handled while the reaction's handler is stuck")
    other_room_after = time.monotonic() - stalled_at
    await follower.leave(room_id)
    codes = "SELECT COUNT(*) FROM coupon_code WHERE user_id=?"
    assert harness.rows(codes, buyer.user_id)[0][0] == 0, "the reaction is still stuck"
    assert harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=? AND room_id=?",
                        follower.user_id, room_id)[0][0] == 1, "the leave waits behind it"

    # After the stall: the reaction's effects once, then the leave; nothing resent.
    await until(lambda: harness.rows(codes, buyer.user_id)[0][0] == 1,
                STALL_SECONDS + 30, "the slow reaction handled")
    await until(lambda: harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=? AND "
                                     "room_id=?", follower.user_id, room_id)[0][0] == 0,
                20, "the leave handled after it")
    handled_after = time.monotonic() - stalled_at
    assert handled_after >= STALL_SECONDS - 1
    dm_room = await _dm_from(buyer, shop)
    await until(lambda: harness.rows(
        "SELECT COUNT(*) FROM outbound_message WHERE state='pending'")[0][0] == 0,
                20, "the waiting DM delivered")
    # The shop's pinned menu is its own message, not an answer to the claim.
    messages = [e for e in await timeline(buyer, dm_room)
                if e["type"] == "m.room.message" and e["sender"] == shop
                and "org.mercato.menu" not in e["content"]]
    code = harness.rows("SELECT code FROM coupon_code WHERE user_id=?", buyer.user_id)[0][0]
    assert [re.findall(r"[A-Z2-9]{10}", m["content"]["body"]) for m in messages] == [[code]]
    assert harness.rows("SELECT COUNT(*) FROM post_reaction WHERE reaction_event_id=?",
                        reaction_id)[0][0] == 1
    assert harness.rows("SELECT COUNT(*) FROM as_inbox WHERE event_id=?", reaction_id)[0][0] == 1
    async with http.get(f"{harness.commerce_url}/metrics") as resp:
        metrics = await resp.text()
    assert not re.search(r'mercato_as_transactions_total\{component="commerce",'
                         r'outcome="duplicate"\} [1-9]', metrics), \
        "Synapse resent a transaction: an answer was held back by the slow handler"
    print(f"\nRESULT slow_handler stall={STALL_SECONDS}s other_room_handled_after="
          f"{other_room_after:.1f}s reaction_handled_after={handled_after:.1f}s "
          f"codes=1 dms={len(messages)} resent=0 lost=0 doubled=0")
