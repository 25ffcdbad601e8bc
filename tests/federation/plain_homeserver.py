"""A plain Synapse for the federation tests: Mercato's rendering of it, none of its
appservices, started and waited for."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from mercato.config import MercatoConfig
from mercato_ops.render import render_all


def start_plain_homeserver(config: MercatoConfig, base: Path) -> subprocess.Popen[bytes]:
    """Synapse alone, rendered from `config` (none of Mercato's appservices run there),
    once it answers /health."""
    paths = render_all(config)
    settings = yaml.safe_load(paths.homeserver_config.read_text())
    settings.pop("app_service_config_files")
    paths.homeserver_config.write_text(yaml.safe_dump(settings))
    with open(base / "synapse.out", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "synapse.app.homeserver", "-c",
                                    str(paths.homeserver_config)], stdout=log,
                                   stderr=subprocess.STDOUT, cwd=base)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((base / "synapse.out").read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"{config.homeserver_url}/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError(f"the homeserver in {base} did not start")
