"""What the network benchmarks share: a network on SQLite or PostgreSQL, accounts, /sync.

`bench_network(workdir, "postgres")` runs the single-process profile (one Synapse
process, Mercato's components) with Synapse and every component on PostgreSQL, in
databases of its own that are dropped afterwards; `"sqlite"` is the embedded default.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from mercato.config import load_config, write_config
from mercato.matrix.admin import registration_mac
from mercato_ops.testnet import RunningNetwork, start_network, write_test_config

DATABASES = ("sqlite", "postgres")
POSTGRES_SERVER = os.environ.get("MERCATO_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
PASSWORD = "bench password 1"


@contextlib.contextmanager
def bench_network(workdir: Path, database: str, profile: str = "single",
                  **overrides: Any) -> Iterator[RunningNetwork]:
    """A started network of `profile` (the single process, or the scale profile, which
    needs PostgreSQL) on `database`, stopped afterwards."""
    if database not in DATABASES:
        raise ValueError(f"database must be one of {DATABASES}, not {database!r}")
    overrides.setdefault("logging", {"level": "WARNING"})
    # Measured with the pools an operator's network has (test networks hold fewer).
    overrides["scale"] = {"connections_per_process": 10, **overrides.get("scale", {})}
    config_path = write_test_config(workdir, **overrides)
    prefix = ""
    if database == "postgres":
        prefix = f"mb{uuid.uuid4().hex[:10]}_"
        config = load_config(config_path)
        urls = {name: f"{POSTGRES_SERVER}/{prefix}{name}"
                for name in ("synapse", "commerce", "contacts")}
        config = config.model_copy(update={
            "scale": config.scale.model_copy(update={"postgres": POSTGRES_SERVER,
                                                     "database_prefix": prefix}),
            **{name: getattr(config, name).model_copy(update={"database": url})
               for name, url in urls.items()}})
        write_config(config, config_path)
        from mercato_ops.supervisor import ensure_databases

        asyncio.run(ensure_databases(config))
    network = None
    try:
        network = start_network(config_path, profile=profile)
        yield network
    finally:
        if network is not None:
            network.stop()
        if prefix:
            asyncio.run(_drop_databases(prefix))


async def _drop_databases(prefix: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
    try:
        for row in await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1",
                                     f"{prefix}%"):
            await admin.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
    finally:
        await admin.close()


async def register(http: aiohttp.ClientSession, hs: str, secret: str, localpart: str) -> str:
    """A new account by shared-secret registration; returns its access token (no login)."""
    url = f"{hs}/_synapse/admin/v1/register"
    async with http.get(url) as resp:
        nonce = (await resp.json())["nonce"]
    async with http.post(url, json={
            "nonce": nonce, "username": localpart, "password": PASSWORD, "admin": False,
            "mac": registration_mac(secret, nonce, localpart, PASSWORD, False)}) as resp:
        data = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"could not register {localpart}: {data}")
        return str(data["access_token"])


async def register_many(http: aiohttp.ClientSession, hs: str, secret: str, prefix: str,
                        count: int, concurrency: int = 16) -> dict[str, str]:
    """`count` new accounts: localpart → access token."""
    limit = asyncio.Semaphore(concurrency)
    tokens: dict[str, str] = {}

    async def one(n: int) -> None:
        localpart = f"{prefix}{n}x{uuid.uuid4().hex[:4]}"
        async with limit:
            tokens[localpart] = await register(http, hs, secret, localpart)

    await asyncio.gather(*(one(n) for n in range(count)))
    return tokens


MARKER = re.compile(r"\[bench:([0-9a-f]+)\]")


class MarkerWatch:
    """One user's long-poll /sync loop, noting when each `[bench:…]` marker first arrived."""

    def __init__(self, http: aiohttp.ClientSession, hs: str, token: str) -> None:
        self.http, self.hs = http, hs
        self.headers = {"Authorization": f"Bearer {token}"}
        self.arrived: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        async with self.http.get(f"{self.hs}/_matrix/client/v3/sync", headers=self.headers,
                                 params={"timeout": "0"}) as resp:
            since = (await resp.json())["next_batch"]
        self._task = asyncio.create_task(self._loop(since))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self, since: str) -> None:
        while True:
            async with self.http.get(f"{self.hs}/_matrix/client/v3/sync", headers=self.headers,
                                     params={"since": since, "timeout": "30000"}) as resp:
                data = await resp.json()
            now = time.monotonic()
            since = data["next_batch"]
            for room in data.get("rooms", {}).get("join", {}).values():
                for event in room.get("timeline", {}).get("events", []):
                    body = str(event.get("content", {}).get("body", ""))
                    for marker in MARKER.findall(body):
                        self.arrived.setdefault(marker, now)
            self._changed.set()

    async def wait(self, marker: str, timeout: float = 300.0) -> float:
        deadline = time.monotonic() + timeout
        while marker not in self.arrived:
            if time.monotonic() > deadline:
                raise TimeoutError(f"marker {marker} never arrived")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 1.0)
        return self.arrived[marker]


def machine() -> dict[str, Any]:
    """What the page says about the machine a run was made on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": ram_gb,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "arch": platform.machine(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
