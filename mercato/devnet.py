"""A throwaway Mercato network on free ports, for tests and benchmarks.

It is started with `mercato up`, exactly as `make run` does: Synapse from PyPI
(the pinned version), on SQLite unless told otherwise, rate limits raised, with
Mercato's appservice registrations loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mercato.config import MercatoConfig, load_config, parse_config, scale_profile, write_config

START_TIMEOUT = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(size: int) -> int:
    """The first of `size` consecutive free ports (for the scale profile's workers)."""
    for _ in range(200):
        # Below Linux's ephemeral range (32768+): outgoing connections never take them.
        base = random.randrange(20000, 32000 - size)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + size):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no block of free ports found")


@dataclass
class RunningNetwork:
    base_dir: Path
    config_path: Path
    config: MercatoConfig
    process: subprocess.Popen[bytes]
    output_path: Path
    profile: str = "single"

    @property
    def demo(self) -> dict[str, Any]:
        return json.loads((self.config.data_path / "demo.json").read_text())

    @property
    def hs_url(self) -> str:
        return self.config.homeserver_url

    @property
    def commerce_url(self) -> str:
        return f"http://127.0.0.1:{self.config.commerce.port}"

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def rows(self, component: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read a component's database as it is now (`?` placeholders), either engine."""
        url = self.config.database_url(component)  # type: ignore[arg-type]
        if url.startswith("sqlite:"):
            import sqlite3

            with sqlite3.connect(url.removeprefix("sqlite:")) as conn:
                return conn.execute(sql, args).fetchall()
        import psycopg2

        with psycopg2.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), args)
            return [tuple(row) for row in cursor.fetchall()]

    def drop_databases(self) -> None:
        """Scale profile: remove this network's databases from the PostgreSQL server."""
        if self.profile != "scale":
            return
        import asyncio

        import asyncpg

        async def drop() -> None:
            admin = await asyncpg.connect(f"{self.config.scale.postgres}/postgres")
            try:
                prefix = self.config.scale.database_prefix
                for row in await admin.fetch("SELECT datname FROM pg_database"):
                    if row["datname"].startswith(prefix):
                        await admin.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
            finally:
                await admin.close()

        asyncio.run(drop())

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError("mercato up did not stop within "
                                     f"{timeout:.0f} s of {signal.Signals(sig).name}") from None
        return self.process.returncode


def write_test_config(base_dir: Path, **overrides: Any) -> Path:
    raw: dict[str, Any] = {
        "server_name": "localhost",
        "synapse": {"port": free_port(), "relaxed_rate_limits": True},
        "commerce": {"port": free_port()},
        "contacts": {"port": free_port()},
        "shopbot": {"port": free_port()},
        "logging": {"level": "INFO", "format": "json"},
        # Used only when the network starts with the scale profile: its own databases.
        "scale": {"database_prefix": f"mt{uuid.uuid4().hex[:10]}_",
                  "worker_port_base": free_port_block(8)},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    path = base_dir / "mercato.yaml"
    write_config(parse_config(raw, base_dir=base_dir), path)
    return path


@contextlib.contextmanager
def network_running(config_path: Path, **start: Any) -> Iterator[RunningNetwork]:
    """A started network, stopped (and its scale databases dropped) afterwards; the
    network must stop cleanly."""
    running = start_network(config_path, **start)
    try:
        yield running
    finally:
        code = running.stop()
        running.drop_databases()
    assert code == 0, f"mercato up stopped with {code}:\n{running.output()[-3000:]}"


def start_network(config_path: Path, *, log_name: str = "mercato-up.out",
                  env: dict[str, str] | None = None, wait: bool = True,
                  profile: str | None = None) -> RunningNetwork:
    """Start `mercato up`; the profile defaults to $MERCATO_TEST_PROFILE, else single."""
    profile = profile or os.environ.get("MERCATO_TEST_PROFILE", "single")
    config = load_config(config_path)
    if profile == "scale":
        config = scale_profile(config)
    demo_file = config.data_path / "demo.json"
    demo_file.unlink(missing_ok=True)
    output_path = config_path.parent / log_name
    with open(output_path, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mercato", "--config", str(config_path),
             "--profile", profile, "up"],
            cwd=config_path.parent, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, **(env or {})})
    network = RunningNetwork(config_path.parent, config_path, config, process, output_path,
                             profile)
    deadline = time.monotonic() + START_TIMEOUT
    while wait and not demo_file.exists():
        if process.poll() is not None:
            raise AssertionError(f"mercato up exited with {process.returncode}:\n"
                                 f"{network.output()[-5000:]}")
        if time.monotonic() > deadline:
            network.stop(signal.SIGKILL)
            raise AssertionError(f"mercato up not ready after {START_TIMEOUT:.0f} s:\n"
                                 f"{network.output()[-5000:]}")
        time.sleep(0.2)
    return network
