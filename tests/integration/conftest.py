from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from mercato_ops.testnet import RunningNetwork, network_running, write_test_config
from tests.integration.client import MatrixClient
from tests.integration.local_https import Certificate, self_signed_certificate
from tests.integration.shop_helpers import Api
from tests.integration.xmpp_server import Prosody, prosody_running
from tests.verification_sinks import MailSink, SmsGateway, contacts_settings


@pytest.fixture(scope="session")
def shop_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """The certificate of shops' test websites and back-ends, which the session network
    trusts."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory, shop_certificate: Certificate,
            code_sinks: tuple[SmsGateway, MailSink]) -> Iterator[RunningNetwork]:
    """The whole Mercato network, started once for the test session."""
    base = tmp_path_factory.mktemp("network")
    with network_running(write_test_config(
            base, commerce={"domain_proof_ca_file": str(shop_certificate.cert),
                            "webhook_ca_file": str(shop_certificate.cert)},
            contacts=contacts_settings(*code_sinks))) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest.fixture
async def buyer(network: RunningNetwork, http: aiohttp.ClientSession) -> MatrixClient:
    demo = network.demo
    return await MatrixClient(http, network.hs_url).login(
        demo["buyer"]["user_id"], demo["buyer"]["password"])


@pytest.fixture
async def merchant(network: RunningNetwork, http: aiohttp.ClientSession) -> MatrixClient:
    demo = network.demo
    return await MatrixClient(http, network.hs_url).login(
        demo["merchant"]["user_id"], demo["merchant"]["password"])


@pytest.fixture
async def api(network: RunningNetwork, http: aiohttp.ClientSession) -> Api:
    """The commerce API, as the operator and shops' back-ends call it."""
    return Api(network, http)


@pytest.fixture(scope="module")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prosody]:
    """A Prosody XMPP server on loopback, one per test module that asks for it."""
    with prosody_running(tmp_path_factory.mktemp("prosody")) as server:
        yield server
