"""Who an OpenID token from a Matrix client belongs to, asked of the homeserver that made it.

A client gets the token from its own homeserver (`/_matrix/client/v3/user/{userId}/
openid/request_token`, or through the widget API); whoever receives it asks that server's
federation API (`/_matrix/federation/v1/openid/userinfo`), found by the usual server
discovery (`federation.py`), which user it was made for. A server vouches only for its
own users: an answer naming a user of another server is refused.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from mercato.config import MercatoConfig
from mercato.matrix import paths
from mercato.matrix.federation import UnreachableServer, federation_base_url, parse_server_name

USERINFO_TIMEOUT = aiohttp.ClientTimeout(total=15)
MAX_TOKEN_CHARS = 1024


class OpenIdRefused(Exception):
    """The token could not be checked or was not accepted; `message` says which, and
    `reason` what for a caller's answer: "shape" (not a token), "undiscoverable" (its
    server has no public address), "no_answer" (its server did not answer) or "refused"."""

    def __init__(self, message: str, *, reason: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    @property
    def unreachable(self) -> bool:
        """The token's server could not be asked: nothing is known of the token."""
        return self.reason in ("undiscoverable", "no_answer")


def user_of_server(user_id: Any, server_name: str) -> bool:
    """Whether `user_id` is a Matrix user ID on exactly `server_name`."""
    if not isinstance(user_id, str) or not user_id.startswith("@") or ":" not in user_id:
        return False
    localpart, server = user_id[1:].split(":", 1)
    return bool(localpart) and server == server_name


def check_token_shape(token: Any, server_name: Any) -> tuple[str, str]:
    """(token, server name) of an OpenID token object's fields, or OpenIdRefused."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS \
            or not token.isprintable() or not isinstance(server_name, str):
        raise OpenIdRefused("Send the OpenID token your homeserver gave you (access_token and "
                            "matrix_server_name).", reason="shape")
    try:
        parse_server_name(server_name)
    except ValueError:
        raise OpenIdRefused(f"{server_name[:80]!r} is not a homeserver's name.",
                            reason="shape") from None
    return token, server_name


async def userinfo_base(http: aiohttp.ClientSession, config: MercatoConfig,
                        server_name: str) -> str:
    """Where to ask: this network's own homeserver directly, any other by discovery."""
    if server_name == config.server_name:
        return config.homeserver_url
    loopback = config.synapse.loopback_federation_for_tests
    try:
        return await federation_base_url(http, server_name, private_allowed=loopback,
                                         verify_tls=not loopback)
    except UnreachableServer as e:
        raise OpenIdRefused(f"Cannot check a token of {server_name[:80]}: {e}.",
                            reason="undiscoverable") from None


async def openid_user(http: aiohttp.ClientSession, config: MercatoConfig, token: Any,
                      server_name: Any) -> str:
    """The Matrix user ID the token was made for, checked with its homeserver."""
    token, server_name = check_token_shape(token, server_name)
    base = await userinfo_base(http, config, server_name)
    url = paths.url(base, paths.matrix_path("federation", "v1", "openid", "userinfo"))
    # Test networks federate on loopback with self-signed certificates.
    verify = not config.synapse.loopback_federation_for_tests
    try:
        async with http.get(url, params={"access_token": token}, timeout=USERINFO_TIMEOUT,
                            allow_redirects=False, ssl=verify) as resp:
            info = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise OpenIdRefused(f"The homeserver {server_name[:80]} did not answer; try again.",
                            reason="no_answer") from None
    user_id = info.get("sub") if isinstance(info, dict) else None
    if not user_of_server(user_id, server_name):
        raise OpenIdRefused("Your homeserver did not accept this sign-in token (it may have "
                            "expired); reload the page to get a new one.")
    return str(user_id)
