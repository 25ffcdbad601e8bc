"""Federation on a private network with a private CA: the recipe of docs/federation.md.

Two plain Synapse homeservers on 127.0.0.1, configured the way the recipe tells an
operator to: server names that resolve to loopback (`localhost:<port>`), one
certificate made with the recipe's own `openssl req` command, which both present and
both trust (`federation.trusted_ca_file`), and loopback let through the block list
(`federation.ip_range_whitelist`). Unlike the other federation tests, certificates are
checked and `loopback_federation_for_tests` is off.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml

from mercato.config import MercatoConfig, parse_config
from mercato.matrix.admin import register_user
from mercato_ops.testnet import free_port
from tests.federation.plain_homeserver import start_plain_homeserver
from tests.integration.client import MatrixClient

DOC = Path(__file__).resolve().parents[2] / "docs" / "federation.md"
PASSWORD = "private network 1"


def recipe_certificate_command() -> list[str]:
    """The `openssl req` command of the recipe, as an operator would paste it."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"^\s*(openssl req -x509 .*?)(?<!\\)$", text, re.M | re.S)
    assert match, "docs/federation.md: the recipe has no `openssl req -x509` command"
    return shlex.split(match.group(1).replace("\\\n", " "))


def test_the_recipe_configurations_are_valid_and_apart() -> None:
    recipe = DOC.read_text(encoding="utf-8").split("### Trying it", 1)[1]
    blocks = [yaml.safe_load(block.replace("/home/you", "/home/operator"))
              for block in re.findall(r"```yaml\n(.*?)```", recipe, re.S)]
    a, b = (parse_config(raw) for raw in blocks)
    for config in (a, b):
        assert config.federation.trusted_ca_file == "/home/operator/mercato-trial/cert.pem"
        assert config.federation.ip_range_whitelist == ["127.0.0.1/32", "::1/128"]
        assert config.federation.verify_certificates is True
        assert not config.synapse.loopback_federation_for_tests

    def ports(config: MercatoConfig) -> set[int | None]:
        synapse = config.synapse
        return {synapse.port, synapse.federation_port, synapse.metrics_port,
                config.commerce.port, config.contacts.port, config.shopbot.port}

    assert not ports(a) & ports(b), "A and B must not share a port"
    assert a.server_name == f"localhost:{a.synapse.federation_port}"
    assert b.server_name == f"localhost:{b.synapse.federation_port}"


@dataclass
class Homeserver:
    config: MercatoConfig
    process: subprocess.Popen[bytes]


def _start(base: Path, certificate: Path, key: Path) -> Homeserver:
    federation_port = free_port()
    config = parse_config({
        "server_name": f"localhost:{federation_port}",
        "demo": {"enabled": False},
        "synapse": {"port": free_port(), "metrics_port": free_port(),
                    "federation_port": federation_port, "relaxed_rate_limits": True,
                    "tls_certificate": str(certificate), "tls_private_key": str(key)},
        "federation": {"ip_range_whitelist": ["127.0.0.1/32", "::1/128"],
                       "trusted_ca_file": str(certificate)},
        "commerce": {"port": free_port()}, "contacts": {"port": free_port()},
        "shopbot": {"port": free_port()}, "logging": {"format": "json"},
    }, base_dir=base)
    return Homeserver(config, start_plain_homeserver(config, base))


@pytest.fixture(scope="module")
def private_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Homeserver]]:
    directory = tmp_path_factory.mktemp("private-network")
    subprocess.run(recipe_certificate_command(), cwd=directory, check=True,
                   capture_output=True)
    certificate, key = directory / "cert.pem", directory / "key.pem"
    servers: list[Homeserver] = []
    try:
        for name in ("a", "b"):
            (directory / name).mkdir()
            servers.append(_start(directory / name, certificate, key))
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
            server.process.wait(30)


async def _user(http: aiohttp.ClientSession, server: Homeserver, localpart: str) -> MatrixClient:
    url = server.config.homeserver_url
    await register_user(http, url, server.config.synapse.registration_shared_secret,
                        localpart, PASSWORD)
    return await MatrixClient(http, url).login(
        f"@{localpart}:{server.config.server_name}", PASSWORD)


async def test_servers_on_a_private_network_with_a_private_ca_federate(
        private_pair: list[Homeserver], http: aiohttp.ClientSession) -> None:
    a, b = private_pair
    owner = await _user(http, a, "owner")
    room = await owner.request("POST", "/_matrix/client/v3/createRoom", {
        "preset": "public_chat", "room_alias_name": "trial", "name": "Trial"})
    await owner.send_text(room["room_id"], "hello from a")
    alias = f"#trial:{a.config.server_name}"

    visitor = await _user(http, b, "visitor")
    # B resolves the alias and joins through A: TLS checked against the private CA.
    assert await visitor.join(alias) == room["room_id"]
    message = await visitor.wait_for_message(
        room["room_id"], lambda event: event["content"].get("body") == "hello from a")
    assert message["sender"] == f"@owner:{a.config.server_name}"
