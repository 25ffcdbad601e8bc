"""One Mercato network for the security tests, with open registration.

Open registration is how a public network lets buyers sign up, and it is what an
attacker uses to try to squat the shops' namespace, so these tests run with it on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from mercato_ops.testnet import RunningNetwork, network_running, write_test_config
from tests.integration.shop_helpers import Api


@pytest.fixture(scope="session")
def open_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    base = tmp_path_factory.mktemp("security-network")
    with network_running(write_test_config(
            base, synapse={"enable_registration": True})) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest.fixture
async def api(open_network: RunningNetwork, http: aiohttp.ClientSession) -> Api:
    return Api(open_network, http)
