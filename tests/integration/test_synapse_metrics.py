"""Synapse's Prometheus metrics, where the README says they are: on synapse.metrics_port.

Only Synapse runs (the reliability Harness starts it alone, from the configuration
`mercato up` renders): metrics are Synapse's own, and nothing else is needed to read them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.reliability.harness import Harness


@pytest.fixture(scope="module")
def synapse_alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    harness = Harness(tmp_path_factory.mktemp("metrics"))
    try:
        harness.start_synapse()
        yield harness
    finally:
        harness.stop_all()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def test_synapse_metrics_are_served_on_the_metrics_port(synapse_alone: Harness) -> None:
    port = synapse_alone.config.synapse.metrics_port
    status, text = _get(f"http://127.0.0.1:{port}/_synapse/metrics")
    assert status == 200
    assert re.search(r"^synapse_\w+", text, re.M), text[:500]
    assert "synapse_build_info" in text


def test_the_public_port_does_not_serve_them(synapse_alone: Harness) -> None:
    for path in ("/_synapse/metrics", "/metrics"):
        status, _ = _get(f"{synapse_alone.hs_url}{path}")
        assert status == 404, path


def test_admin_status_lists_synapse_metrics(synapse_alone: Harness) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mercato_ops", "--config", str(synapse_alone.config_path),
         "admin", "status"], capture_output=True, text=True, timeout=60)
    port = synapse_alone.config.synapse.metrics_port
    assert re.search(rf"synapse metrics\s+│\s+up\s+│\s+http://127\.0\.0\.1:{port}"
                     r"/_synapse/metrics", result.stdout), result.stdout + result.stderr
    assert re.search(r"synapse\s+│\s+up", result.stdout)
    # Only Synapse runs here: the components are down, and the command says so.
    assert re.search(r"commerce\s+│\s+down", result.stdout)
    assert result.returncode == 1
