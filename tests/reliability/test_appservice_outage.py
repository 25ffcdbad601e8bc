"""The commerce appservice is down mid-campaign while Synapse keeps running.

Campaign posts fall due while it is down and buyers follow channels and react to
posts (Synapse queues those transactions and backs off). After the restart the
appservice pings Synapse, which retries at once instead of waiting out its backoff:
the follows are recorded within seconds, and every post is in every room exactly
once and in order.

The outage is short (OUTAGE_SECONDS) so the suite stays fast; a 10-minute outage
differs only in Synapse's backoff, which is capped at 512 s and cut short by the
same ping (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from datetime import datetime
from urllib.parse import quote

from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.reliability.harness import (
    Harness,
    check_exactly_once_in_order,
    draft_rounds,
    posts_in,
    schedule,
    timeline,
    until,
    wait_all_sent,
)

SHOPS = 3
CAMPAIGNS_PER_SHOP = 4
OUTAGE_SECONDS = 15
# Synapse's next retry would come 16 s or more after the outage began; the ping
# makes it immediate.
CATCH_UP_SECONDS = 6


async def read(client: MatrixClient, room_id: str, event_id: str) -> None:
    """What a client sends when its user has seen an event."""
    await client.request("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/receipt/m.read/"
                         f"{quote(event_id)}", {})


def views_of(harness: Harness, event_id: str) -> set[str]:
    return {row[0] for row in harness.rows(
        "SELECT user_id FROM post_view WHERE post_event_id=?", event_id)}


def _synapse_recovery(harness: Harness) -> tuple[float, float] | None:
    """(when Synapse's last scheduled retry was due, when it recovered the appservice)."""
    due = recovered = None
    log = harness.paths.log_dir / "synapse.log"
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        text, at = entry.get("event", ""), entry.get("timestamp", "")
        if not isinstance(text, str) or "mercato-commerce" not in text:
            continue
        when = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        if match := re.match(r"Scheduling retries on mercato-commerce in ([0-9.]+)s", text):
            due = when + float(match.group(1))
        elif text.startswith("Successfully recovered application service"):
            recovered = when
    return (due, recovered) if due and recovered else None


async def test_commerce_down_mid_campaign_catches_up_after_ping(harness: Harness, http) -> None:
    harness.start_synapse()
    harness.start_commerce()
    api = Api(harness, http)
    owner = await new_user(harness, http, "owner")
    follower = await new_user(harness, http, "follower")
    latecomer = await new_user(harness, http, "late")
    shops = [await open_shop(api, owner.user_id, quota=20) for _ in range(SHOPS)]
    rooms = {slug: await follower.join(f"#shop_{slug}:localhost") for slug, _ in shops}

    # Campaign 0 of every shop goes out now; 1..3 fall due while commerce is down.
    order, campaigns = await draft_rounds(api, shops, CAMPAIGNS_PER_SHOP)
    due = int(time.time() * 1000) + 4000
    for n in range(1, CAMPAIGNS_PER_SHOP):
        for slug, key in shops:
            await schedule(api, slug, key, order[slug][n], due + n * 1000)
    for slug, key in shops:
        await schedule(api, slug, key, order[slug][0])
    await until(lambda: harness.logged("outbox.sent"), 20, "a first post sent", interval=0.02)
    first_room = rooms[shops[0][0]]
    first_post = await follower.wait_for_message(
        first_room, lambda e: "org.mercato.post" in e.get("content", {}))
    # A read receipt while commerce is up counts as a view of the post.
    await read(follower, first_room, first_post["event_id"])
    await until(lambda: views_of(harness, first_post["event_id"]) == {follower.user_id}, 10,
                "the follower's read receipt counted")
    harness.stop_commerce(signal.SIGKILL)
    sent_before = len(harness.logged("outbox.sent"))
    down_at = time.monotonic()

    # While it is down: a buyer follows every channel and reacts to a post.
    for slug, _ in shops:
        await latecomer.join(rooms[slug])
    # Synapse drops ephemeral events (receipts) it could not deliver: this view is lost.
    await read(latecomer, first_room, first_post["event_id"])
    reaction_id = await follower.send(first_room, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": first_post["event_id"], "key": "👍"}},
        event_type="m.reaction")
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    assert harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=?",
                        latecomer.user_id)[0][0] == 0, "commerce was down: nothing recorded"

    harness.start_commerce()
    ready_at = time.monotonic()
    assert harness.logged("appservice.ping_ok", since_start=2), \
        "the restarted appservice should ping Synapse"

    def caught_up() -> bool:
        follows = harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=?",
                               latecomer.user_id)[0][0]
        reactions = harness.rows("SELECT COUNT(*) FROM post_reaction WHERE "
                                 "reaction_event_id=?", reaction_id)[0][0]
        return follows == SHOPS and reactions == 1

    await until(caught_up, CATCH_UP_SECONDS, "events queued in Synapse during the outage "
                "handled after the ping", interval=0.1)
    catch_up = time.monotonic() - ready_at
    # Synapse's own log: it recovered the appservice before its backoff would have.
    await until(lambda: _synapse_recovery(harness), 10, "Synapse's recovery logged")
    scheduled_at, recovered_at = _synapse_recovery(harness)
    assert recovered_at < scheduled_at - 1, (scheduled_at, recovered_at)
    cut = scheduled_at - recovered_at
    await wait_all_sent(api, campaigns, 60)

    posts = {slug: await posts_in(follower, room_id) for slug, room_id in rooms.items()}
    lost, doubled = check_exactly_once_in_order(posts, order)
    # Every other event of the rooms is there once too (nothing replayed).
    for room_id in rooms.values():
        event_ids = [e["event_id"] for e in await timeline(follower, room_id)]
        assert len(event_ids) == len(set(event_ids))
    # The side effects happened once: one follow per channel, one reaction.
    assert harness.rows("SELECT COUNT(*) FROM follow_log WHERE user_id=?",
                        latecomer.user_id)[0][0] == SHOPS
    assert harness.rows("SELECT COUNT(*) FROM post_reaction")[0][0] == 1
    # Views are approximate by design (docs/reliability.md): the receipt sent during the
    # outage may be missing, but nothing is corrupted — no view is counted twice, none
    # for a user who never read, and receipts after the restart count again.
    owner_key = shops[0][1]
    reader = await new_user(harness, http, "reader")
    await reader.join(first_room)
    await read(reader, first_room, first_post["event_id"])
    await until(lambda: reader.user_id in views_of(harness, first_post["event_id"]), 10,
                "a receipt after the restart counted")
    views = views_of(harness, first_post["event_id"])
    assert views <= {follower.user_id, latecomer.user_id, reader.user_id}
    assert {follower.user_id, reader.user_id} <= views
    status, stats = await api.call("GET", f"/shops/{shops[0][0]}/stats", owner_key)
    assert status == 200, stats
    first_campaign = next(c for c in stats["campaigns"] if c["id"] == order[shops[0][0]][0])
    assert first_campaign["views"] == len(views), (first_campaign, views)
    assert "approximate" in stats["note"]
    print(f"\nRESULT receipts views_counted={len(views)} lost_during_outage="
          f"{int(latecomer.user_id not in views)} doubled=0")
    print(f"\nRESULT outage={OUTAGE_SECONDS}s posts={SHOPS * CAMPAIGNS_PER_SHOP} "
          f"sent_before_kill={sent_before} catch_up={catch_up:.1f}s "
          f"backoff_cut={cut:.1f}s lost={lost} "
          f"doubled={doubled}")
