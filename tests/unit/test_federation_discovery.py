"""Finding another homeserver's federation API from its server name, and refusing
names that lead into the operator's own network."""

from __future__ import annotations

import aiohttp
import pytest

from mercato.matrix.federation import (
    UnreachableServer,
    federation_base_url,
    parse_server_name,
)


@pytest.mark.parametrize(("name", "parsed"), [
    ("matrix.org", ("matrix.org", None)),
    ("matrix.org:8449", ("matrix.org", 8449)),
    ("127.0.0.1:8448", ("127.0.0.1", 8448)),
    ("[2001:db8::1]", ("[2001:db8::1]", None)),
    ("[2001:db8::1]:443", ("[2001:db8::1]", 443)),
])
def test_server_names_are_parsed(name: str, parsed: tuple[str, int | None]) -> None:
    assert parse_server_name(name) == parsed


@pytest.mark.parametrize("name", ["", "evil.example/path", "a b", "host:", "host:99999",
                                  "user@host", "host:80:81", "[::1", "x" * 300,
                                  "https://matrix.org"])
def test_what_is_not_a_server_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        parse_server_name(name)


async def test_ip_literals_and_ports_are_used_as_they_are() -> None:
    async with aiohttp.ClientSession() as http:
        assert await federation_base_url(http, "93.184.215.14") == "https://93.184.215.14:8448"
        assert await federation_base_url(http, "127.0.0.1:28448", private_allowed=True) == \
            "https://127.0.0.1:28448"
        assert await federation_base_url(http, "[::1]", private_allowed=True) == \
            "https://[::1]:8448"


@pytest.mark.parametrize("name", ["127.0.0.1:8448", "10.1.2.3", "[::1]:8448", "localhost",
                                  "192.168.1.10:443", "not a name"])
async def test_private_addresses_are_refused(name: str) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(UnreachableServer):
            await federation_base_url(http, name)
