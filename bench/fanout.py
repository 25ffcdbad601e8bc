"""Broadcast fan-out: one campaign post to a channel of N followers, versus N direct messages.

The reference is the SMS-style way, measured in the same run on the same Synapse:
the shop sends the same promo as N one-to-one messages. Both are timed from the
moment the shop asks for the send until a sample of followers' /sync has it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from mercato.devnet import start_network, write_test_config
from mercato.matrix.admin import register_user

SAMPLE = 10
PASSWORD = "bench password 1"


async def _login(http: aiohttp.ClientSession, hs: str, user: str) -> str:
    async with http.post(f"{hs}/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
            "password": PASSWORD}) as resp:
        return (await resp.json())["access_token"]


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


async def _run(workdir: Path, followers: int) -> dict[str, Any]:
    network = start_network(write_test_config(workdir, logging={"level": "WARNING"}))
    try:
        config = network.config
        hs = network.hs_url
        api = f"{network.commerce_url}/api/v1"
        key = network.demo["shop"]["api_key"]
        operator = {"Authorization": f"Bearer {config.commerce.operator_token}"}
        shop = network.demo["shop"]["user_id"]
        as_headers = {"Authorization": f"Bearer {config.commerce.as_token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as http:
            async with http.put(f"{api}/shops/demo/quota", headers=operator,
                                json={"posts_per_day": 100}) as resp:
                assert resp.status == 200
            alias = network.demo["channel_alias"].replace("#", "%23")
            async with http.get(f"{hs}/_matrix/client/v3/directory/room/{alias}") as resp:
                channel = (await resp.json())["room_id"]
            users = [f"f{i}x{uuid.uuid4().hex[:4]}" for i in range(followers)]
            setup_start = time.monotonic()
            tokens: dict[str, str] = {}
            limit = asyncio.Semaphore(16)

            async def make_follower(localpart: str) -> None:
                async with limit:
                    await register_user(http, hs, config.synapse.registration_shared_secret,
                                        localpart, PASSWORD)
                    token = await _login(http, hs, f"@{localpart}:{config.server_name}")
                    tokens[localpart] = token
                    async with http.post(f"{hs}/_matrix/client/v3/join/{channel}", json={},
                                         headers={"Authorization": f"Bearer {token}"}) as r:
                        assert r.status == 200, await r.text()

            await asyncio.gather(*(make_follower(u) for u in users))
            # The SMS-style reference needs one DM room per follower, made beforehand.
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

            await asyncio.gather(*(make_dm(u) for u in users))
            setup = time.monotonic() - setup_start
            sample = [(u, tokens[u]) for u in random.sample(users, min(SAMPLE, len(users)))]

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

            async def send_dms() -> None:
                # One message per follower, as an SMS gateway sends them: in sequence.
                for n, room_id in enumerate(dm_rooms.values()):
                    async with http.put(
                            f"{hs}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/"
                            f"bench{dm_marker}{n}", params={"user_id": shop},
                            headers=as_headers,
                            json={"msgtype": "m.text", "body": f"Sale {dm_marker}"}) as r:
                        assert r.status == 200

            dm_time = await _measure(http, hs, sample, send_dms, dm_marker)
    finally:
        network.stop()
    return {"followers": followers, "channel_seconds": round(channel_time, 3),
            "dm_seconds": round(dm_time, 3), "speedup": round(dm_time / channel_time, 1),
            "setup_seconds": round(setup, 1)}


def run(workdir: Path, quick: bool) -> dict[str, Any]:
    sizes = (100, 300) if quick else (100, 1000, 3000)
    rows = []
    for n in sizes:
        sub = workdir / f"n{n}"
        sub.mkdir()
        rows.append(asyncio.run(_run(sub, n)))
    growth = rows[-1]["channel_seconds"] / rows[0]["channel_seconds"]
    return {"name": "broadcast fan-out", "sizes": rows,
            "channel_time_growth": round(growth, 2),
            "note": f"time({sizes[-1]}) / time({sizes[0]}) for the channel post"}
