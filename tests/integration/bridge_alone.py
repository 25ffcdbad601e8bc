"""Synapse and the contacts bridge as separate processes, so a test can restart the bridge.

`mercato up` stops the whole network when one component dies; a test that restarts
only the bridge starts the two itself with what `mercato up` renders (`render_all`) and
the same commands (`python -m synapse.app.homeserver`, `mercato run contacts`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from mercato.config import MercatoConfig, load_config
from mercato.devnet import write_test_config
from mercato.render import render_all

START_TIMEOUT = 120.0


class BridgeAlone:
    """`hs_url` and `config` make it usable where the helpers take a RunningNetwork."""

    def __init__(self, base_dir: Path, **overrides: Any) -> None:
        self.base_dir = base_dir
        self.config_path = write_test_config(base_dir, demo={"enabled": False}, **overrides)
        self.config: MercatoConfig = load_config(self.config_path)
        self.paths = render_all(self.config)
        self.synapse: subprocess.Popen[bytes] | None = None
        self.bridge: subprocess.Popen[bytes] | None = None

    @property
    def hs_url(self) -> str:
        return self.config.homeserver_url

    @property
    def bridge_log(self) -> Path:
        return self.paths.log_dir / "contacts.out"

    def _spawn(self, argv: list[str], log_name: str,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.paths.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.paths.log_dir / log_name, "ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=self.paths.data_dir, start_new_session=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    def _wait_healthy(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{url} exited with {process.returncode}:\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not healthy at {url}:\n{log.read_text(errors='replace')[-3000:]}")

    def start_synapse(self) -> None:
        self.synapse = self._spawn([sys.executable, "-m", "synapse.app.homeserver", "-c",
                                    str(self.paths.homeserver_config)], "synapse.out")
        self._wait_healthy(self.synapse, f"{self.hs_url}/health",
                           self.paths.log_dir / "synapse.out")

    def start_bridge(self, env: dict[str, str] | None = None) -> None:
        """`env` adds to the bridge's environment (MERCATO_FAULTS for a planned crash)."""
        assert self.bridge is None or self.bridge.poll() is not None
        self.bridge = self._spawn([sys.executable, "-m", "mercato", "--config",
                                   str(self.config_path), "run", "contacts"], "contacts.out",
                                  env)
        self._wait_healthy(self.bridge, f"http://127.0.0.1:{self.config.contacts.port}/health",
                           self.bridge_log)

    @staticmethod
    def _stop(process: subprocess.Popen[bytes] | None, sig: int) -> int | None:
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return process.returncode

    def stop_bridge(self, sig: int = signal.SIGTERM) -> int | None:
        return self._stop(self.bridge, sig)

    def stop_all(self) -> None:
        self.stop_bridge()
        self._stop(self.synapse, signal.SIGTERM)

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """The bridge's database as it is now (`?` placeholders)."""
        import sqlite3

        with sqlite3.connect(self.config.data_path / "contacts.db") as conn:
            return conn.execute(sql, args).fetchall()
