"""Follow storm: N people join one shop's channel at once.

Measured in the same run on the same Synapse:
- joins/s: N prepared accounts join the channel, CONCURRENCY at a time, versus plain
  message sends/s: the same number of sends, CONCURRENCY at a time, by CONCURRENCY
  users into an ordinary room (what the server does for a cheap write);
- the channel's post latency: a campaign post, from the shop's schedule call until a
  sample of followers' /sync has it, while the channel is idle and while the storm runs.

Accounts are made beforehand by shared-secret registration; that is set-up, not timed.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from bench.common import MarkerWatch, bench_network, register_many

CONCURRENCY = 16
SAMPLED_FOLLOWERS = 3
# Seconds between posts during the storm: about 150 posts whatever its size, well under
# the most a shop may post in a day (1,000).
POSTS_PER_STORM = 150


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _call(http: aiohttp.ClientSession, method: str, url: str, token: str,
                body: Any = None) -> dict[str, Any]:
    async with http.request(method, url, json=body, headers=_auth(token)) as resp:
        data = await resp.json(content_type=None)
        if resp.status not in (200, 201):
            raise RuntimeError(f"{method} {url}: {resp.status} {data}")
        return data  # type: ignore[no-any-return]


async def _paced(tasks: list[Any], concurrency: int) -> float:
    """Run the coroutine factories `concurrency` at a time; seconds from first to last."""
    queue = list(reversed(tasks))
    start = time.monotonic()

    async def worker() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - start


def _summary(latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"posts": 0}
    ordered = sorted(latencies)
    return {"posts": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
            "all_ms": [round(x * 1000, 1) for x in latencies]}


async def _storm(network: Any, followers: int, idle_posts: int,
                 before_joins: Callable[[], None] | None = None) -> dict[str, Any]:
    config, hs = network.config, network.hs_url
    secret = config.synapse.registration_shared_secret
    api = f"{network.commerce_url}/api/v1"
    key = network.demo["shop"]["api_key"]
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as http:
        await _call(http, "PUT", f"{api}/shops/demo/quota", config.commerce.operator_token,
                    {"posts_per_day": 1000})
        alias = quote(network.demo["channel_alias"])
        async with http.get(f"{hs}/_matrix/client/v3/directory/room/{alias}") as resp:
            channel = (await resp.json())["room_id"]

        setup_start = time.monotonic()
        joiners = await register_many(http, hs, secret, "storm", followers)
        watchers_tokens = await register_many(http, hs, secret, "watch", SAMPLED_FOLLOWERS)
        talkers = list((await register_many(http, hs, secret, "talk", CONCURRENCY)).values())
        plain_room = (await _call(http, "POST", f"{hs}/_matrix/client/v3/createRoom",
                                  talkers[0], {"preset": "public_chat"}))["room_id"]
        for token in talkers[1:]:
            await _call(http, "POST", f"{hs}/_matrix/client/v3/join/{quote(plain_room)}",
                        token, {})
        watchers = []
        for token in watchers_tokens.values():
            await _call(http, "POST", f"{hs}/_matrix/client/v3/join/{quote(channel)}", token,
                        {})
            watcher = MarkerWatch(http, hs, token)
            await watcher.start()
            watchers.append(watcher)
        setup = time.monotonic() - setup_start

        async def post() -> float:
            """One campaign post; seconds until every sampled follower's /sync has it."""
            marker = uuid.uuid4().hex[:12]
            start = time.monotonic()
            campaign = await _call(http, "POST", f"{api}/shops/demo/campaigns", key, {
                "kind": "text", "fields": {"title": "Storm sale",
                                           "text": f"Today only [bench:{marker}]"}})
            await _call(http, "POST", f"{api}/shops/demo/campaigns/{campaign['id']}/schedule",
                        key)
            arrived = await asyncio.gather(*(w.wait(marker) for w in watchers))
            return max(arrived) - start

        idle = [await post() for _ in range(idle_posts)]

        # The reference: as many plain sends as there will be joins, as many at a time.
        def send(n: int) -> Any:
            token = talkers[n % CONCURRENCY]
            return lambda: _call(
                http, "PUT", f"{hs}/_matrix/client/v3/rooms/{quote(plain_room)}/send/"
                             f"m.room.message/{uuid.uuid4().hex}", token,
                {"msgtype": "m.text", "body": f"hello {n}"})

        send_seconds = await _paced([send(n) for n in range(followers)], CONCURRENCY)

        def join(token: str) -> Any:
            return lambda: _call(http, "POST", f"{hs}/_matrix/client/v3/join/{quote(channel)}",
                                 token, {})

        storm_done = asyncio.Event()
        during: list[float] = []

        # At the send rate's pace a join storm lasts several times the sends' time.
        interval = max(1.0, 5 * send_seconds / POSTS_PER_STORM)

        async def post_during_storm() -> None:
            while not storm_done.is_set():
                started = time.monotonic()
                during.append(await post())
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

        if before_joins is not None:
            before_joins()
        poster = asyncio.create_task(post_during_storm())
        join_seconds = await _paced([join(t) for t in joiners.values()], CONCURRENCY)
        storm_done.set()
        await poster
        members = await _call(http, "GET",
                              f"{hs}/_matrix/client/v3/rooms/{quote(channel)}/joined_members",
                              next(iter(joiners.values())))
        for watcher in watchers:
            await watcher.stop()
    joined = len(members["joined"])
    if joined < followers + SAMPLED_FOLLOWERS:
        raise RuntimeError(f"only {joined} members in the channel after {followers} joins")
    joins_per_s = followers / join_seconds
    sends_per_s = followers / send_seconds
    return {"followers": followers, "concurrency": CONCURRENCY,
            "join_seconds": round(join_seconds, 2), "joins_per_s": round(joins_per_s, 1),
            "send_seconds": round(send_seconds, 2), "sends_per_s": round(sends_per_s, 1),
            "ratio": round(joins_per_s / sends_per_s, 3),
            "post_latency_idle": _summary(idle), "post_latency_storm": _summary(during),
            "setup_seconds": round(setup, 1)}


def run(workdir: Path, quick: bool, database: str = "sqlite",
        profile: str = "single") -> dict[str, Any]:
    followers = 500 if quick else 10_000
    with bench_network(workdir, database, profile=profile) as network:
        result = asyncio.run(_storm(network, followers, idle_posts=5 if quick else 10))
    idle, storm = result["post_latency_idle"], result["post_latency_storm"]
    if storm.get("posts"):
        result["latency_ratio_p50"] = round(storm["p50_ms"] / idle["p50_ms"], 2)
    return {"name": "follow storm", "database": database, "profile": profile, **result}


def run_scale(workdir: Path, quick: bool) -> dict[str, Any]:
    """The scale profile (Synapse workers, PostgreSQL, Redis): joins and posts are
    persisted by the event persister while the generic worker serves /sync."""
    return run(workdir, quick, "postgres", profile="scale")
