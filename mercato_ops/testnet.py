"""A throwaway Mercato network on free ports, for tests and benchmarks.

It is started with `mercato up`, exactly as `make run` does: Synapse from PyPI
(the pinned version), on SQLite unless told otherwise, rate limits raised, with
Mercato's appservice registrations loaded. On the scale profile each network gets
a Redis server of its own, stopped with it (`NetworkRedis`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
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


# Ports below Linux's ephemeral range (32768+): an outgoing connection never takes
# one between our check and the server's bind.
_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def _bindable(ports: range) -> bool:
    try:
        with contextlib.ExitStack() as stack:
            for port in ports:
                sock = stack.enter_context(socket.socket())
                sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def free_port_block(size: int) -> int:
    """The first of `size` consecutive free ports, none handed out before by this process.

    Asking the kernel for port 0 twice in a row can return the same port when
    nothing is listening on it yet: two services of one test network then got
    one port (a CI failure). Remembering what was handed out rules that out.
    """
    low, high = _PORT_RANGE
    for _ in range(500):
        base = random.randrange(low, high - size)
        ports = range(base, base + size)
        if _handed_out.intersection(ports) or not _bindable(ports):
            continue
        _handed_out.update(ports)
        return base
    raise RuntimeError("no block of free ports found")


def free_port() -> int:
    return free_port_block(1)


class NetworkRedis:
    """A redis-server of one test network: in-memory only, on a free loopback port.

    Synapse names its Redis channels after the server name, every test network is
    called localhost, and Redis pub/sub ignores database numbers: two scale networks
    on one Redis would receive each other's replication traffic.
    """

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed; the scale profile's test "
                               "networks each start their own (Debian: redis-server)")
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(directory),
             "--logfile", str(directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(directory)

    def _wait_ready(self, directory: Path) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = directory / "redis.log"
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: "
                                   f"{log.read_text()[-2000:] if log.exists() else ''}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 20 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class RunningNetwork:
    base_dir: Path
    config_path: Path
    config: MercatoConfig
    process: subprocess.Popen[bytes]
    output_path: Path
    profile: str = "single"
    redis: NetworkRedis | None = None

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

    def logged(self, event: str) -> list[str]:
        """The log lines (with what follows them: a trace) of every process of the network
        that record `event`, for a failing test to say what went wrong inside."""
        paths = [self.output_path, *sorted((self.config.data_path / "logs").glob("*.out"))]
        found = []
        for path in paths:
            if path.exists():
                text = path.read_text(errors="replace")
                at = text.find(event)
                while at != -1:
                    found.append(text[text.rfind("\n", 0, at) + 1:at + 4000])
                    at = text.find(event, at + len(event))
        return found

    def rows(self, component: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read a component's database as it is now (`?` placeholders), either engine."""
        url = self.config.database_url(component)
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
        import psycopg2

        # Synchronous, so that async tests may stop a network too.
        conn = psycopg2.connect(f"{self.config.scale.postgres}/postgres")
        try:
            conn.autocommit = True  # DROP DATABASE cannot run in a transaction
            with conn.cursor() as cursor:
                cursor.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                               (self.config.scale.database_prefix,))
                for (name,) in cursor.fetchall():
                    cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> int:
        """Stop `mercato up`, then this network's own Redis (scale profile)."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(sig)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
                    raise AssertionError(
                        f"mercato up did not stop within {timeout:.0f} s of "
                        f"{signal.Signals(sig).name}") from None
            return self.process.returncode
        finally:
            if self.redis is not None:
                self.redis.stop()


def write_test_config(base_dir: Path, **overrides: Any) -> Path:
    raw: dict[str, Any] = {
        "server_name": "localhost",
        "synapse": {"port": free_port(), "metrics_port": free_port(),
                    "relaxed_rate_limits": True},
        "commerce": {"port": free_port()},
        "contacts": {"port": free_port()},
        "shopbot": {"port": free_port()},
        "logging": {"level": "INFO", "format": "json"},
        # Used only when the network starts with the scale profile: its own databases,
        # and ports for the main process, five workers and the workers' metrics. A run
        # keeps two networks alive at once (and a federation test two homeservers): at
        # 5 connections a process, each holds at most 40 of PostgreSQL's 100.
        "scale": {"database_prefix": f"mt{uuid.uuid4().hex[:10]}_",
                  "worker_port_base": free_port_block(12), "connections_per_process": 5},
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
    """Start `mercato up`; the profile defaults to $MERCATO_TEST_PROFILE, else single.

    On the scale profile the network gets a Redis server of its own, whose port is
    written into the config file (`scale.redis_port`); `stop()` stops it.
    """
    profile = profile or os.environ.get("MERCATO_TEST_PROFILE", "single")
    config = load_config(config_path)
    redis = None
    if profile == "scale":
        redis = NetworkRedis(config.data_path / "redis")
        config = config.model_copy(update={"scale": config.scale.model_copy(
            update={"redis_host": "127.0.0.1", "redis_port": redis.port})})
        write_config(config, config_path)
        config = scale_profile(config)
    demo_file = config.data_path / "demo.json"
    demo_file.unlink(missing_ok=True)
    output_path = config_path.parent / log_name
    with open(output_path, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mercato_ops", "--config", str(config_path),
             "--profile", profile, "up"],
            cwd=config_path.parent, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, **(env or {})})
    network = RunningNetwork(config_path.parent, config_path, config, process, output_path,
                             profile, redis)
    deadline = time.monotonic() + START_TIMEOUT
    while wait and not demo_file.exists():
        if process.poll() is not None:
            network.stop()
            raise AssertionError(f"mercato up exited with {process.returncode}:\n"
                                 f"{network.output()[-5000:]}")
        if time.monotonic() > deadline:
            network.stop(signal.SIGKILL)
            raise AssertionError(f"mercato up not ready after {START_TIMEOUT:.0f} s:\n"
                                 f"{network.output()[-5000:]}")
        time.sleep(0.2)
    return network
