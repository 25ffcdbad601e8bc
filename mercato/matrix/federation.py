"""Reaching another homeserver's federation API from its server name.

The server-server spec's "Resolving server names", except for SRV records, which are
not looked up (a server that publishes only an SRV record is tried at port 8448 of
its name): an IP literal or a name with a port is used as it is; otherwise the
server's `/.well-known/matrix/server` may delegate to another name and port; otherwise
port 8448. Every address is checked to be on the public internet first (`fetchable`),
unless the caller allows private ones (test networks on loopback).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import aiohttp

from mercato.net import fetchable

DEFAULT_PORT = 8448
WELL_KNOWN_TIMEOUT = aiohttp.ClientTimeout(total=10)
_SERVER_NAME = re.compile(
    r"^(?P<host>\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::(?P<port>[0-9]{1,5}))?$")


class UnreachableServer(Exception):
    """The server name is not one Mercato may (or can) send a request to."""


def parse_server_name(name: str) -> tuple[str, int | None]:
    """(host, port or None) of a server name; ValueError if it is not one."""
    found = _SERVER_NAME.match(name)
    if not found:
        raise ValueError(f"not a server name: {name[:80]!r}")
    port = int(found["port"]) if found["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"not a port: {port}")
    return found["host"], port


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def federation_base_url(http: aiohttp.ClientSession, server_name: str, *,
                              private_allowed: bool = False, verify_tls: bool = True) -> str:
    """`https://host:port` of the server's federation API; UnreachableServer if the name
    is malformed or leads somewhere private."""
    try:
        host, port = parse_server_name(server_name)
    except ValueError as e:
        raise UnreachableServer(str(e)) from None
    if port is None and not _is_ip_literal(host):
        delegated = await _well_known(http, host, private_allowed=private_allowed,
                                      verify_tls=verify_tls)
        if delegated is not None:
            host, port = delegated
    url = f"https://{host}:{port or DEFAULT_PORT}"
    if not await fetchable(url, private_allowed):
        raise UnreachableServer(f"{server_name} is not on the public internet")
    return url


async def _well_known(http: aiohttp.ClientSession, host: str, *, private_allowed: bool,
                      verify_tls: bool) -> tuple[str, int | None] | None:
    url = f"https://{host}/.well-known/matrix/server"
    if not await fetchable(url, private_allowed):
        return None
    try:
        async with http.get(url, timeout=WELL_KNOWN_TIMEOUT, allow_redirects=False,
                            ssl=verify_tls) as resp:
            if resp.status != 200:
                return None
            body: Any = json.loads(await resp.content.read(64 * 1024))
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    delegated = body.get("m.server") if isinstance(body, dict) else None
    if not isinstance(delegated, str):
        return None
    try:
        return parse_server_name(delegated)
    except ValueError:
        return None
