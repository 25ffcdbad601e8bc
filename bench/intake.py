"""Appservice intake: transactions of 100 events into the commerce appservice's inbox.

Reference, in the same run: the same transactions sent to a bare aiohttp handler
(bare_server.py) that only parses the JSON, in its own process like the appservice.
Synapse keeps one transaction in flight per appservice, so transactions are sent
one after another, as Synapse does.
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

from mercato.devnet import free_port, start_network, write_test_config

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


def run(workdir: Path, quick: bool) -> dict[str, Any]:
    transactions = 100 if quick else 1000
    rounds = 3
    bodies = [synthetic_transaction(i) for i in range(transactions)]
    network = start_network(write_test_config(workdir, logging={"level": "WARNING"}))
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bare_server.py")),
                             str(bare_port)])
    try:
        bare_url = f"http://127.0.0.1:{bare_port}"
        asyncio.run(_wait_health(bare_url))
        commerce_times, bare_times = [], []
        for _ in range(rounds):  # interleaved, so a noisy neighbour hits both alike
            commerce_times.append(asyncio.run(_push(
                network.commerce_url, network.config.commerce.hs_token, bodies)))
            bare_times.append(asyncio.run(_push(bare_url, "unused", bodies)))
    finally:
        bare.terminate()
        bare.wait()
        network.stop()
    events = transactions * EVENTS_PER_TXN
    commerce_rate = events / min(commerce_times)
    bare_rate = events / min(bare_times)
    return {
        "name": "appservice intake",
        "events": events,
        "commerce_events_per_s": round(commerce_rate),
        "bare_events_per_s": round(bare_rate),
        "ratio": round(commerce_rate / bare_rate, 3),
        "goals": {"events_per_s >= 5000": commerce_rate >= 5000,
                  "ratio >= 0.30": commerce_rate / bare_rate >= 0.30},
        "rounds": rounds,
    }
