"""Command round trip: a command to the shop bot until its reply reaches the sender's /sync.

The reference, measured in the same run on the same Synapse, is the plain echo: one
user's message to another user until it reaches the receiver's /sync. Samples of both
are interleaved, one at a time, so a noisy neighbour hits them alike.

Then a burst: U users each send their share of N commands to the bot in their own
direct chat, as fast as the server accepts them (each user waits for its previous send
to be accepted, the users run concurrently), until every reply has reached its sender's
/sync; versus the same users sending the same number of plain messages, in the same
pattern, to one receiver (an ordinary account, as the bot is) until its /sync has them.

Every client is raw HTTP long-poll /sync, as any client app does it; an event's arrival
time is when the /sync response carrying it was read.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from bench.common import bench_network
from mercato.matrix.admin import register_user

PASSWORD = "bench password 1"
# What a chat client asks for: timelines large enough that a burst is not truncated.
SYNC_FILTER = json.dumps({
    "room": {"timeline": {"limit": 1000}, "state": {"lazy_load_members": True},
             "ephemeral": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]}},
    "presence": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]},
})
GOALS = {"p50": 2.0, "p95": 3.0}


class Inbox:
    """One user's long-poll /sync loop, recording when each event first arrived.

    Keys: ("event", event_id) for every timeline event, and ("reply", event_id) for an
    event that replies to event_id.
    """

    def __init__(self, http: aiohttp.ClientSession, hs: str, token: str) -> None:
        self.http, self.hs = http, hs
        self.headers = {"Authorization": f"Bearer {token}"}
        self.arrived: dict[tuple[str, str], float] = {}
        self.waiting: dict[tuple[str, str], asyncio.Future[float]] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.http.get(f"{self.hs}/_matrix/client/v3/sync", headers=self.headers,
                                 params={"timeout": "0", "filter": SYNC_FILTER}) as resp:
            since = (await resp.json())["next_batch"]
        self.task = asyncio.create_task(self._loop(since))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass

    async def _loop(self, since: str) -> None:
        while True:
            async with self.http.get(f"{self.hs}/_matrix/client/v3/sync", headers=self.headers,
                                     params={"since": since, "timeout": "30000",
                                             "filter": SYNC_FILTER}) as resp:
                data = await resp.json()
            now = time.monotonic()
            since = data["next_batch"]
            for room in data.get("rooms", {}).get("join", {}).values():
                for event in room.get("timeline", {}).get("events", []):
                    keys = [("event", event["event_id"])]
                    relation = event.get("content", {}).get("m.relates_to", {})
                    replied = relation.get("m.in_reply_to", {}).get("event_id")
                    if replied:
                        keys.append(("reply", replied))
                    for key in keys:
                        self.arrived.setdefault(key, now)
                        future = self.waiting.pop(key, None)
                        if future and not future.done():
                            future.set_result(now)

    async def wait(self, key: tuple[str, str], timeout: float = 120.0) -> float:
        if key in self.arrived:
            return self.arrived[key]
        future = self.waiting.setdefault(key, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(future), timeout)


class User:
    def __init__(self, http: aiohttp.ClientSession, hs: str, user_id: str, token: str) -> None:
        self.http, self.hs, self.user_id = http, hs, user_id
        self.headers = {"Authorization": f"Bearer {token}"}
        self.inbox = Inbox(http, hs, token)

    async def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        async with self.http.request(method, f"{self.hs}/_matrix/client/v3{path}", json=body,
                                     headers=self.headers) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise RuntimeError(f"{method} {path}: {resp.status} {data}")
            return data

    async def send(self, room_id: str, body: str) -> str:
        data = await self.call("PUT", f"/rooms/{quote(room_id)}/send/m.room.message/"
                                      f"{uuid.uuid4().hex}", {"msgtype": "m.text", "body": body})
        return data["event_id"]

    async def dm(self, other: str) -> str:
        data = await self.call("POST", "/createRoom", {
            "invite": [other], "is_direct": True, "preset": "trusted_private_chat"})
        return data["room_id"]

    async def join(self, room_id: str) -> None:
        await self.call("POST", f"/join/{quote(room_id)}", {})

    async def wait_joined(self, room_id: str, member: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            members = await self.call("GET", f"/rooms/{quote(room_id)}/joined_members")
            if member in members.get("joined", {}):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{member} did not join {room_id}")


async def _make_users(http: aiohttp.ClientSession, hs: str, secret: str, server: str,
                      count: int, prefix: str) -> list[User]:
    limit = asyncio.Semaphore(16)

    async def make(n: int) -> User:
        localpart = f"{prefix}{n}x{uuid.uuid4().hex[:4]}"
        async with limit:
            await register_user(http, hs, secret, localpart, PASSWORD)
            async with http.post(f"{hs}/_matrix/client/v3/login", json={
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": localpart},
                    "password": PASSWORD}) as resp:
                data = await resp.json()
        return User(http, hs, f"@{localpart}:{server}", data["access_token"])

    return list(await asyncio.gather(*(make(n) for n in range(count))))


def _percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 1), "p95_ms": round(cuts[94] * 1000, 1),
            "samples": len(samples)}


async def _latency(buyer: User, bot_room: str, sender: User, receiver: User, echo_room: str,
                   samples: int, warmup: int) -> dict[str, list[float]]:
    async def command(word: str) -> float:
        start = time.monotonic()
        event_id = await buyer.send(bot_room, word)
        return await buyer.inbox.wait(("reply", event_id)) - start

    async def echo() -> float:
        start = time.monotonic()
        event_id = await sender.send(echo_room, f"hello {uuid.uuid4().hex[:8]}")
        return await receiver.inbox.wait(("event", event_id)) - start

    kinds = {"ping": lambda: command("ping"), "shops": lambda: command("shops"), "echo": echo}
    times: dict[str, list[float]] = {name: [] for name in kinds}
    order = list(kinds)
    for n in range(warmup + samples):
        order = order[1:] + order[:1]  # rotate, so no kind always follows another
        for name in order:
            took = await kinds[name]()
            if n >= warmup:
                times[name].append(took)
    return times


QUIET = 20.0  # seconds without a new arrival after which the rest count as lost


async def _burst(senders: list[User], rooms: list[str], per_user: int, body: str,
                 inbox_of: Any, kind: str, closed_loop: bool) -> dict[str, Any]:
    """Every sender sends `per_user` messages into its room, the senders concurrently.

    Open loop: each message as soon as the previous send was accepted, then wait for all
    arrivals (`kind` key in `inbox_of(sender)`). Closed loop: each sender waits for the
    arrival before sending the next. Returns what arrived and the seconds from the first
    send until the last arrival; what has not arrived QUIET seconds after the last
    arrival is lost.
    """
    start = time.monotonic()
    sent: list[tuple[Inbox, tuple[str, str]]] = []

    async def one(sender: User, room_id: str) -> None:
        inbox = inbox_of(sender)
        for _ in range(per_user):
            key = (kind, await sender.send(room_id, body))
            sent.append((inbox, key))
            if closed_loop:
                try:
                    await inbox.wait(key, timeout=QUIET)
                except TimeoutError:
                    pass

    await asyncio.gather(*(one(s, r) for s, r in zip(senders, rooms, strict=True)))
    count, changed = -1, time.monotonic()
    while True:
        arrivals = [inbox.arrived[key] for inbox, key in sent if key in inbox.arrived]
        if len(arrivals) != count:
            count, changed = len(arrivals), time.monotonic()
        if count == len(sent) or time.monotonic() - changed > QUIET:
            break
        await asyncio.sleep(0.1)
    seconds = (max(arrivals) if arrivals else time.monotonic()) - start
    return {"sent": len(sent), "arrived": count, "seconds": round(seconds, 2),
            "per_s": round(count / seconds, 1)}


def _compare(commands: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    return {"commands": commands, "plain": plain,
            "ratio": round(commands["per_s"] / plain["per_s"], 3),
            "commands_lost": commands["sent"] - commands["arrived"],
            "plain_lost": plain["sent"] - plain["arrived"]}


async def _run(network: Any, quick: bool) -> dict[str, Any]:
    samples, warmup = (50, 5) if quick else (200, 10)
    burst_users, burst_commands = (10, 200) if quick else (50, 1000)
    per_user = burst_commands // burst_users
    config, hs = network.config, network.hs_url
    bot = network.demo["shopbot"]
    secret = config.synapse.registration_shared_secret
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=900)) as http:
        buyer, sender, receiver = await _make_users(http, hs, secret, config.server_name,
                                                    3, "rt")
        bot_room = await buyer.dm(bot)
        await buyer.wait_joined(bot_room, bot)
        echo_room = await sender.dm(receiver.user_id)
        await receiver.join(echo_room)
        for user in (buyer, sender, receiver):
            await user.inbox.start()
        times = await _latency(buyer, bot_room, sender, receiver, echo_room,
                               samples, warmup)
        for user in (buyer, sender, receiver):
            await user.inbox.stop()

        # The burst: the same users DM the bot and, for the reference, one receiver.
        users = await _make_users(http, hs, secret, config.server_name, burst_users, "rb")
        limit = asyncio.Semaphore(16)

        async def rooms_of(user: User) -> tuple[str, str]:
            async with limit:
                room = await user.dm(bot)
                plain = await user.dm(receiver.user_id)
                await receiver.join(plain)
                await user.wait_joined(room, bot)
                return room, plain

        pairs = await asyncio.gather(*(rooms_of(u) for u in users))
        for user in [*users, receiver]:
            await user.inbox.start()

        bot_rooms, plain_rooms = [p[0] for p in pairs], [p[1] for p in pairs]
        bursts = {}
        for closed in (False, True):
            bursts["closed_loop" if closed else "open_loop"] = _compare(
                await _burst(users, bot_rooms, per_user, "ping", lambda u: u.inbox,
                             "reply", closed),
                await _burst(users, plain_rooms, per_user, "hello",
                             lambda _: receiver.inbox, "event", closed))
        for user in [*users, receiver]:
            await user.inbox.stop()

    echo = _percentiles(times["echo"])
    commands: dict[str, Any] = {}
    for word in ("ping", "shops"):
        row: dict[str, Any] = _percentiles(times[word])
        row["p50_ratio"] = round(row["p50_ms"] / echo["p50_ms"], 2)
        row["p95_ratio"] = round(row["p95_ms"] / echo["p95_ms"], 2)
        row["goals"] = {"p50 <= 2x echo": row["p50_ratio"] <= GOALS["p50"],
                        "p95 <= 3x echo": row["p95_ratio"] <= GOALS["p95"]}
        commands[word] = row
    return {
        "name": "command round trip",
        "echo": echo,
        "commands": commands,
        "burst": {"users": burst_users, "commands": per_user * burst_users, "command": "ping",
                  **bursts},
        "note": "open loop: each user sends its next command as soon as the previous send "
                "is accepted; closed loop: as soon as the previous reply arrived",
        "samples_ms": {kind: [round(t * 1000, 1) for t in took] for kind, took in times.items()},
    }


def run(workdir: Path, quick: bool, database: str = "sqlite") -> dict[str, Any]:
    with bench_network(workdir, database) as network:
        result = asyncio.run(_run(network, quick))
    return {**result, "database": database}
