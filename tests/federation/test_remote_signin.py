"""A user of another homeserver signs in to Mercato's web pages with an OpenID token from
their own server, which Mercato finds by server discovery and asks over federation (TLS)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.federation.conftest import RemoteHomeserver, remote_user


async def sign_in_with(mercato: RunningNetwork, token: dict[str, Any]) -> tuple[int, Any]:
    """POST the token as the storefront's widget script does, with its page's CSRF token."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(f"{mercato.commerce_url}/web/signin") as page:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert csrf
        async with browser.post(f"{mercato.commerce_url}/web/signin/openid", data={
                "csrf_token": csrf.group(1), "access_token": token["access_token"],
                "matrix_server_name": token["matrix_server_name"]}) as resp:
            answer = await resp.json(content_type=None)
        async with browser.get(f"{mercato.commerce_url}/web/signin") as page:
            shown = await page.text()
        return resp.status, (answer, shown)


async def test_a_remote_users_openid_token_signs_them_in(
        mercato_hs: RunningNetwork, remote_hs: RemoteHomeserver,
        http: aiohttp.ClientSession) -> None:
    user = await remote_user(remote_hs, http, "farshopper")
    token = await user.request(
        "POST", f"/_matrix/client/v3/user/{quote(user.user_id)}/openid/request_token", {})
    assert token["matrix_server_name"] == remote_hs.server_name
    status, (answer, shown) = await sign_in_with(mercato_hs, token)
    assert status == 200, answer
    assert answer == {"user_id": user.user_id}
    assert f"Signed in as <strong>{user.user_id}</strong>" in shown

    # The remote server's token claimed for Mercato's own server: Mercato's Synapse does not
    # know it, so nobody is signed in.
    status, (answer, shown) = await sign_in_with(
        mercato_hs, {**token, "matrix_server_name": mercato_hs.config.server_name})
    assert status == 401 and "did not accept" in answer["error"]
    assert "Signed in as" not in shown
