"""Where Mercato may send a request someone else chose the address of."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


async def fetchable(url: str, private_allowed: bool = False) -> bool:
    """An http(s) address whose host is on the public internet (unless private ones are
    allowed, in tests): a link or a server name from a user must not make Mercato send
    requests into the operator's own network.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if private_allowed:
        return True
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        return False
    return bool(found) and all(ipaddress.ip_address(info[4][0]).is_global for info in found)
