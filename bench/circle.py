"""Circle fan-out: one recommendation reaching N friends, versus N direct messages.

A buyer's circle room holds N friends (approved one by one, as `circle approve` does). The
buyer recommends a product through the commerce API; the benchmark counts the messages
commerce sent for it (the outbox's `circle_recommendation` counter on /metrics: one,
whatever N) and times it until a sample of friends' /sync has it. The reference, in the
same run on the same Synapse: the same words sent as N one-to-one messages by @mercato,
one after another, as a per-friend copy would be.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import bench_network, register_many
from bench.fanout import _measure

SAMPLE = 10
FRIENDS = 500
OWNER = "circleowner"


async def _sent_recommendations(http: aiohttp.ClientSession, commerce_url: str) -> float:
    async with http.get(f"{commerce_url}/metrics") as resp:
        text = await resp.text()
    found = re.search(r'mercato_outbox_messages_total\{[^}]*kind="circle_recommendation"'
                      r'[^}]*outcome="sent"[^}]*\} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0


async def _run(network: Any, friends: int) -> dict[str, Any]:
    config = network.config
    hs = network.hs_url
    api = f"{network.commerce_url}/api/v1"
    key = {"Authorization": f"Bearer {network.demo['shop']['api_key']}"}
    as_headers = {"Authorization": f"Bearer {config.commerce.as_token}"}

    def acting(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {config.commerce.service_token}",
                "X-Mercato-Acting-User": user_id}

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as http:
        async with http.post(f"{api}/shops/demo/products", headers=key, json={
                "sku": "bench-mug", "title": "Mug", "price": "10.00",
                "currency": "EUR"}) as r:
            assert r.status in (201, 409), await r.text()
        setup_start = time.monotonic()
        owner_tokens = await register_many(http, hs, config.synapse.registration_shared_secret,
                                           OWNER, 1)
        owner_local = next(iter(owner_tokens))
        owner = f"@{owner_local}:{config.server_name}"
        async with http.post(f"{api}/me/circle", headers=acting(owner), json={}) as r:
            circle = await r.json()
            assert r.status == 200, circle
        tokens = await register_many(http, hs, config.synapse.registration_shared_secret,
                                     "cf", friends)
        limit = asyncio.Semaphore(16)

        async def befriend(localpart: str) -> None:
            user_id = f"@{localpart}:{config.server_name}"
            async with limit:
                async with http.post(f"{api}/me/circle/friends", headers=acting(owner),
                                     json={"user_id": user_id}) as r:
                    assert r.status == 200, await r.text()
                async with http.post(f"{hs}/_matrix/client/v3/join/{circle['room_id']}",
                                     json={}, headers={"Authorization":
                                                       f"Bearer {tokens[localpart]}"}) as r:
                    assert r.status == 200, await r.text()

        await asyncio.gather(*(befriend(u) for u in tokens))
        dm_rooms: list[str] = []

        async def make_dm(localpart: str) -> None:
            async with limit:
                user_id = f"@{localpart}:{config.server_name}"
                async with http.post(f"{hs}/_matrix/client/v3/createRoom", headers=as_headers,
                                     json={"invite": [user_id], "is_direct": True,
                                           "preset": "trusted_private_chat"}) as r:
                    room_id = (await r.json())["room_id"]
                async with http.post(f"{hs}/_matrix/client/v3/join/{room_id}", json={},
                                     headers={"Authorization":
                                              f"Bearer {tokens[localpart]}"}) as r:
                    assert r.status == 200
                dm_rooms.append(room_id)

        await asyncio.gather(*(make_dm(u) for u in tokens))
        setup = time.monotonic() - setup_start
        sample = random.sample(list(tokens.items()), min(SAMPLE, friends))

        marker = f"circle-{uuid.uuid4().hex[:8]}"
        before = await _sent_recommendations(http, network.commerce_url)

        async def recommend() -> None:
            async with http.post(f"{api}/me/circle/recommendations", headers=acting(owner),
                                 json={"shop": "demo", "sku": "bench-mug",
                                       "note": marker}) as r:
                assert r.status == 201, await r.text()

        circle_time = await _measure(http, hs, sample, recommend, marker)
        sends = await _sent_recommendations(http, network.commerce_url) - before
        dm_marker = f"dm-{uuid.uuid4().hex[:8]}"

        async def send_dms() -> None:
            for n, room_id in enumerate(dm_rooms):
                async with http.put(
                        f"{hs}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/"
                        f"bench{dm_marker}{n}", headers=as_headers,
                        json={"msgtype": "m.text", "body": f"Mug {dm_marker}"}) as r:
                    assert r.status == 200

        dm_time = await _measure(http, hs, sample, send_dms, dm_marker)
    return {"friends": friends, "circle_seconds": round(circle_time, 3),
            "circle_sends": int(sends), "dm_seconds": round(dm_time, 3), "dm_sends": friends,
            "speedup": round(dm_time / circle_time, 1), "setup_seconds": round(setup, 1),
            "sampled_friends": len(sample)}


def run(workdir: Path, quick: bool, database: str = "sqlite") -> dict[str, Any]:
    friends = FRIENDS  # quick or full: the size the Circle is promised at
    with bench_network(workdir, database) as network:
        row = asyncio.run(_run(network, friends))
    return {"name": "circle fan-out", "database": database, **row,
            "goals": {"one send per recommendation": row["circle_sends"] == 1}}


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The benchmark's lines in docs/benchmarks.md."""
    one = r["circle_sends"] == 1
    return [(f"circle fan-out: a recommendation to {r['friends']:,} friends (until "
             f"{r['sampled_friends']} sampled friends' /sync has it)",
             f"{r['circle_sends']} send: {r['circle_seconds']} s",
             f"{r['dm_sends']:,} DMs: {r['dm_seconds']} s", f"{r['speedup']}× faster",
             f"one send: {'yes' if one else '**NO**'}")]
