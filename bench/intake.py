"""Appservice intake: transactions of 100 events into the commerce appservice's inbox.

References, in the same run: the same transactions sent to a bare aiohttp handler
(bare_server.py) that only parses the JSON, in its own process like the appservice;
and to the same bare handler persisting each transaction to SQLite before answering
(one executemany, one durable commit): the floor set by the disk for any handler that
keeps the persist-before-200 guarantee. Synapse keeps one transaction in flight per
appservice, so transactions are sent one after another, as Synapse does. After each
push the benchmark waits until the appservice has handled what it stored, so a
backlog never overlaps the next measurement; that time is reported too.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import bench_network
from mercato_ops.testnet import free_port

EVENTS_PER_TXN = 100


def synthetic_transaction(index: int) -> bytes:
    events = [{
        "type": "m.room.message",
        "room_id": f"!bench{(index * EVENTS_PER_TXN + i) % 50}:localhost",
        "sender": f"@buyer{i}:localhost",
        "event_id": f"${uuid.uuid4().hex}",
        "origin_server_ts": int(time.time() * 1000),
        "content": {"msgtype": "m.text", "body": f"message {i} of transaction {index}"},
    } for i in range(EVENTS_PER_TXN)]
    return json.dumps({"events": events}).encode()


async def _push(url: str, token: str, bodies: list[bytes]) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        for body in bodies:
            async with session.put(f"{url}/_matrix/app/v1/transactions/{uuid.uuid4().hex}",
                                   data=body, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"transaction refused: {resp.status} {await resp.text()}")
        return time.perf_counter() - start


async def _wait_health(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{url}/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _pending(network: Any) -> int:
    return int(network.rows("commerce", "SELECT COUNT(*) FROM as_inbox"
                                        " WHERE handled_at IS NULL")[0][0])


def _drain(network: Any, timeout: float = 600.0) -> float:
    """Seconds until the appservice has handled every stored event."""
    start = time.perf_counter()
    while _pending(network):
        if time.perf_counter() - start > timeout:
            raise RuntimeError("the commerce appservice did not handle its inbox")
        time.sleep(0.05)
    return time.perf_counter() - start


def _bare(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bare_server.py")),
                             str(port), *args])
    return proc, f"http://127.0.0.1:{port}"


def run(workdir: Path, quick: bool, database: str = "sqlite") -> dict[str, Any]:
    transactions = 100 if quick else 1000
    rounds = 3
    bodies = [synthetic_transaction(i) for i in range(transactions)]
    bare, bare_url = _bare()
    persisted, persisted_url = _bare("--persist", str(workdir / "bare-inbox.db"))
    try:
        with bench_network(workdir, database) as network:
            for url in (bare_url, persisted_url):
                asyncio.run(_wait_health(url))
            times: dict[str, list[float]] = {"commerce": [], "bare": [], "persisted": [],
                                             "handled": [], "dedup": []}
            for n in range(rounds):  # interleaved, so a noisy neighbour hits all alike
                # Fresh transaction and event IDs each round: nothing is a retry.
                round_bodies = bodies if n == 0 else [synthetic_transaction(i)
                                                      for i in range(transactions)]
                start = time.perf_counter()
                times["commerce"].append(asyncio.run(_push(
                    network.commerce_url, network.config.commerce.hs_token, round_bodies)))
                _drain(network)
                times["handled"].append(time.perf_counter() - start)
                # The same events again under new txnIds, as after a lost 200: the whole
                # persist path (a durable commit per transaction), with nothing new to
                # handle. The gap to the first push is what handling costs the intake.
                times["dedup"].append(asyncio.run(_push(
                    network.commerce_url, network.config.commerce.hs_token, round_bodies)))
                _drain(network)
                times["bare"].append(asyncio.run(_push(bare_url, "unused", round_bodies)))
                times["persisted"].append(asyncio.run(_push(persisted_url, "unused",
                                                            round_bodies)))
    finally:
        for proc in (bare, persisted):
            proc.terminate()
            proc.wait()
    events = transactions * EVENTS_PER_TXN
    rate = {name: events / min(took) for name, took in times.items()}
    return {
        "name": "appservice intake",
        "database": database,
        "events": events,
        "commerce_events_per_s": round(rate["commerce"]),
        "bare_events_per_s": round(rate["bare"]),
        "persisted_bare_events_per_s": round(rate["persisted"]),
        "handled_events_per_s": round(rate["handled"]),
        "commerce_nothing_to_handle_events_per_s": round(rate["dedup"]),
        "ratio": round(rate["commerce"] / rate["bare"], 3),
        "ratio_to_persisted": round(rate["commerce"] / rate["persisted"], 3),
        "goals": {"events_per_s >= 5000": rate["commerce"] >= 5000,
                  "ratio >= 0.30": rate["commerce"] / rate["bare"] >= 0.30},
        "rounds": rounds,
    }
