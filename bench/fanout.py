"""Broadcast fan-out: one campaign post to a channel of N followers, versus N direct messages.

The reference is the SMS-style way, measured in the same run on the same Synapse:
the shop sends the same promo as N one-to-one messages, all at once, as many requests in
flight as the HTTP client allows (DM_IN_FLIGHT, aiohttp's default pool). Both are
timed from the moment the shop asks for the send until a sample of followers' /sync
has it. Past DM_CAP followers the DM way is measured on DM_CAP of them and scaled
linearly (equal sends through the same pool; making 10,000 DM rooms would take hours).

Where the time goes: the same text is also sent straight to Synapse as the shop, and
split into the send request (event creation, every member's push rules evaluated,
persisting) and delivery to the clients' /sync; the campaign's extra time over that
is the appservice's (campaign API, outbox, its own send).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import bench_network, register_many

SAMPLE = 10
DM_CAP = 1000
DM_IN_FLIGHT = 100  # aiohttp's default connection pool: the most a client sends at once


async def _sync_until(http: aiohttp.ClientSession, hs: str, token: str, since: str,
                      marker: str, deadline: float) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        async with http.get(f"{hs}/_matrix/client/v3/sync", headers=headers,
                            params={"since": since, "timeout": "10000"}) as resp:
            data = await resp.json()
        since = data["next_batch"]
        for room in data.get("rooms", {}).get("join", {}).values():
            for event in room.get("timeline", {}).get("events", []):
                if marker in str(event.get("content", {}).get("body", "")):
                    return time.monotonic()
    raise TimeoutError("the post never reached a sampled follower")


async def _sync_token(http: aiohttp.ClientSession, hs: str, token: str) -> str:
    async with http.get(f"{hs}/_matrix/client/v3/sync", params={"timeout": "0"},
                        headers={"Authorization": f"Bearer {token}"}) as resp:
        return (await resp.json())["next_batch"]


async def _measure(http: aiohttp.ClientSession, hs: str, sample: list[tuple[str, str]],
                   send: Any, marker: str) -> float:
    sinces = [await _sync_token(http, hs, token) for _, token in sample]
    start = time.monotonic()
    deadline = start + 900
    waiters = [asyncio.create_task(_sync_until(http, hs, token, since, marker, deadline))
               for (_, token), since in zip(sample, sinces, strict=True)]
    await send()
    done = await asyncio.gather(*waiters)
    return max(done) - start


async def _run(network: Any, followers: int) -> dict[str, Any]:
    config = network.config
    hs = network.hs_url
    api = f"{network.commerce_url}/api/v1"
    key = network.demo["shop"]["api_key"]
    operator = {"Authorization": f"Bearer {config.commerce.operator_token}"}
    shop = network.demo["shop"]["user_id"]
    as_headers = {"Authorization": f"Bearer {config.commerce.as_token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900),
                                     connector=aiohttp.TCPConnector(limit=DM_IN_FLIGHT)) as http:
        async with http.put(f"{api}/shops/demo/quota", headers=operator,
                            json={"posts_per_day": 100}) as resp:
            assert resp.status == 200
        alias = network.demo["channel_alias"].replace("#", "%23")
        async with http.get(f"{hs}/_matrix/client/v3/directory/room/{alias}") as resp:
            channel = (await resp.json())["room_id"]
        setup_start = time.monotonic()
        tokens = await register_many(http, hs, config.synapse.registration_shared_secret,
                                     "f", followers)
        users = list(tokens)
        limit = asyncio.Semaphore(16)

        async def follow(localpart: str) -> None:
            async with limit:
                async with http.post(f"{hs}/_matrix/client/v3/join/{channel}", json={},
                                     headers={"Authorization": f"Bearer {tokens[localpart]}"}
                                     ) as r:
                    assert r.status == 200, await r.text()

        await asyncio.gather(*(follow(u) for u in users))
        # The SMS-style reference needs one DM room per follower, made beforehand; past
        # DM_CAP followers it is measured on DM_CAP of them and scaled (it is a sequence
        # of equal sends, so its time grows linearly).
        dm_users = users[:DM_CAP]
        dm_rooms: dict[str, str] = {}

        async def make_dm(localpart: str) -> None:
            async with limit:
                user_id = f"@{localpart}:{config.server_name}"
                async with http.post(f"{hs}/_matrix/client/v3/createRoom",
                                     params={"user_id": shop}, headers=as_headers,
                                     json={"invite": [user_id], "is_direct": True,
                                           "preset": "trusted_private_chat"}) as r:
                    room_id = (await r.json())["room_id"]
                async with http.post(f"{hs}/_matrix/client/v3/join/{room_id}", json={},
                                     headers={"Authorization":
                                              f"Bearer {tokens[localpart]}"}) as r:
                    assert r.status == 200
                dm_rooms[localpart] = room_id

        await asyncio.gather(*(make_dm(u) for u in dm_users))
        setup = time.monotonic() - setup_start
        sample = [(u, tokens[u]) for u in random.sample(dm_users, min(SAMPLE, len(dm_users)))]

        channel_marker = f"channel-{uuid.uuid4().hex[:8]}"

        async def send_campaign() -> None:
            async with http.post(f"{api}/shops/demo/campaigns",
                                 headers={"Authorization": f"Bearer {key}"},
                                 json={"kind": "text", "fields": {
                                     "title": "Sale", "text": channel_marker}}) as r:
                campaign = await r.json()
            async with http.post(f"{api}/shops/demo/campaigns/{campaign['id']}/schedule",
                                 headers={"Authorization": f"Bearer {key}"}) as r:
                assert r.status == 200, await r.text()

        channel_time = await _measure(http, hs, sample, send_campaign, channel_marker)

        dm_marker = f"dm-{uuid.uuid4().hex[:8]}"

        async def send_dm(n: int, room_id: str) -> None:
            async with http.put(
                    f"{hs}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/"
                    f"bench{dm_marker}{n}", params={"user_id": shop}, headers=as_headers,
                    json={"msgtype": "m.text", "body": f"Sale {dm_marker}"}) as r:
                assert r.status == 200

        async def send_dms() -> None:
            # One message per follower, all asked for at once: as many requests in flight
            # as the HTTP client allows (aiohttp's pool: DM_IN_FLIGHT connections).
            await asyncio.gather(*(send_dm(n, room_id)
                                   for n, room_id in enumerate(dm_rooms.values())))

        dm_time = await _measure(http, hs, sample, send_dms, dm_marker)

        # Where the time goes: the same post sent straight to Synapse as the shop (no
        # appservice), split into the send request (event creation, push-rule
        # evaluation for every member, persisting) and delivery to the clients' /sync.
        direct_marker = f"direct-{uuid.uuid4().hex[:8]}"
        sent_at: list[float] = []

        async def send_direct() -> None:
            start = time.monotonic()
            async with http.put(
                    f"{hs}/_matrix/client/v3/rooms/{channel}/send/m.room.message/"
                    f"bench{direct_marker}", params={"user_id": shop}, headers=as_headers,
                    json={"msgtype": "m.text", "body": f"Sale {direct_marker}"}) as r:
                assert r.status == 200, await r.text()
            sent_at.append(time.monotonic() - start)

        direct_time = await _measure(http, hs, sample, send_direct, direct_marker)
    dm_scale = followers / len(dm_users)
    return {"followers": followers, "channel_seconds": round(channel_time, 3),
            "dm_seconds": round(dm_time * dm_scale, 3),
            "dm_measured_on": len(dm_users), "dm_in_flight": DM_IN_FLIGHT,
            "speedup": round(dm_time * dm_scale / channel_time, 1),
            "breakdown_ms": {
                "appservice (campaign API, outbox, its send)":
                    round(max(0.0, channel_time - direct_time) * 1000, 1),
                "Synapse send request (incl. push-rule evaluation per member)":
                    round(sent_at[0] * 1000, 1),
                "Synapse to the clients' /sync":
                    round((direct_time - sent_at[0]) * 1000, 1)},
            "setup_seconds": round(setup, 1)}


def run(workdir: Path, quick: bool, database: str = "sqlite") -> dict[str, Any]:
    sizes = (100, 300) if quick else (100, 1000, 10_000)
    rows = []
    for n in sizes:
        sub = workdir / f"n{n}"
        sub.mkdir()
        with bench_network(sub, database) as network:
            rows.append(asyncio.run(_run(network, n)))
    growth = rows[-1]["channel_seconds"] / rows[0]["channel_seconds"]
    return {"name": "broadcast fan-out", "database": database, "sizes": rows,
            "channel_time_growth": round(growth, 2),
            "note": f"time({sizes[-1]}) / time({sizes[0]}) for the channel post"}
