"""Two homeservers on loopback: Mercato's (with everything) and a plain remote Synapse.

Each has a TLS federation listener with its own self-signed certificate; the test
configs (only they) turn off certificate checks and allow loopback addresses.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from mercato.config import MercatoConfig, parse_config, write_config
from mercato.matrix.admin import register_user
from mercato_ops.testnet import RunningNetwork, free_port, network_running, write_test_config
from tests.federation.plain_homeserver import start_plain_homeserver
from tests.integration.client import MatrixClient
from tests.integration.local_https import self_signed_certificate
from tests.integration.shop_helpers import Api
from tests.verification_sinks import MailSink, SmsGateway, contacts_settings

PASSWORD = "remote password 1"


@dataclass
class RemoteHomeserver:
    config: MercatoConfig
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return self.config.homeserver_url

    @property
    def server_name(self) -> str:
        return self.config.server_name


def _tls_settings(directory: Path, port: int) -> dict[str, object]:
    cert = self_signed_certificate(directory, name="homeserver")
    return {"federation_port": port, "tls_certificate": str(cert.cert),
            "tls_private_key": str(cert.key), "loopback_federation_for_tests": True,
            "relaxed_rate_limits": True}



def _start_remote(base: Path) -> RemoteHomeserver:
    fed_port = free_port()
    raw = {"server_name": f"127.0.0.1:{fed_port}", "demo": {"enabled": False},
           "synapse": {"port": free_port(), "metrics_port": free_port(),
                       **_tls_settings(base, fed_port)},
           "commerce": {"port": free_port()}, "contacts": {"port": free_port()},
           "shopbot": {"port": free_port()}, "logging": {"format": "json"}}
    config = parse_config(raw, base_dir=base)
    write_config(config, base / "mercato.yaml")
    return RemoteHomeserver(config, start_plain_homeserver(config, base))


# Package scope: both homeservers stop (and the scale profile's databases are dropped)
# once the federation tests are done, so a whole-suite run never holds more networks
# than PostgreSQL has connections for.
@pytest.fixture(scope="package")
def mercato_hs(tmp_path_factory: pytest.TempPathFactory,
               code_sinks: tuple[SmsGateway, MailSink]) -> Iterator[RunningNetwork]:
    base = tmp_path_factory.mktemp("mercato-hs")
    fed_port = free_port()
    with network_running(write_test_config(
            base, server_name=f"127.0.0.1:{fed_port}", synapse=_tls_settings(base, fed_port),
            contacts=contacts_settings(*code_sinks))) as running:
        yield running


@pytest.fixture(scope="package")
def remote_hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteHomeserver]:
    remote = _start_remote(tmp_path_factory.mktemp("remote-hs"))
    yield remote
    remote.process.terminate()
    remote.process.wait(30)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as session:
        yield session


@pytest.fixture
async def api(mercato_hs: RunningNetwork, http: aiohttp.ClientSession) -> Api:
    return Api(mercato_hs, http)


async def remote_user(remote: RemoteHomeserver, http: aiohttp.ClientSession,
                      localpart: str) -> MatrixClient:
    await register_user(http, remote.url, remote.config.synapse.registration_shared_secret,
                        localpart, PASSWORD)
    return await MatrixClient(http, remote.url).login(
        f"@{localpart}:{remote.server_name}", PASSWORD)
