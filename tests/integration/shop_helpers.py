"""Shops, users and API calls that several integration tests set up the same way."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import aiohttp
from PIL import Image

from mercato.matrix.admin import register_user
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient


class Api:
    def __init__(self, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
        self.base = f"{network.commerce_url}/api/v1"
        self.http = http
        self.operator = network.config.commerce.operator_token

    async def call(self, method: str, path: str, token: str, body: Any = None,
                   data: bytes | None = None) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body, data=data,
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json(content_type=None)


async def new_user(network: RunningNetwork, http: aiohttp.ClientSession,
                   name: str) -> MatrixClient:
    localpart = f"{name}{uuid.uuid4().hex[:8]}"
    await register_user(http, network.hs_url, network.config.synapse.registration_shared_secret,
                        localpart, "correct horse battery")
    return await MatrixClient(http, network.hs_url).login(f"@{localpart}:localhost",
                                                          "correct horse battery")


async def open_shop(api: Api, owner: str, *, verified: bool = True,
                    quota: int = 10, shares: int = 1000) -> tuple[str, str]:
    """An approved (and verified) shop with an owner API key: (slug, key). `quota` posts
    and `shares` product cards a day (tests share many cards)."""
    slug = f"c{uuid.uuid4().hex[:10]}"
    status, body = await api.call("POST", "/shops", api.operator, {
        "slug": slug, "name": f"Shop {slug}", "website": f"https://{slug}.example",
        "owner": owner})
    assert status == 201, body
    assert (await api.call("POST", f"/shops/{slug}/approve", api.operator))[0] == 200
    if verified:
        assert (await api.call("POST", f"/shops/{slug}/verify", api.operator))[0] == 200
    assert (await api.call("PUT", f"/shops/{slug}/quota", api.operator,
                           {"posts_per_day": quota, "shares_per_day": shares}))[0] == 200
    status, key = await api.call("POST", f"/shops/{slug}/keys", api.operator,
                                 {"label": "back-end", "role": "owner"})
    assert status == 201, key
    return slug, key["key"]


async def channel_listed(client: MatrixClient, alias: str) -> dict[str, Any]:
    """The channel's entry in the public room directory, once the server lists it."""
    rooms: list[dict[str, Any]] = []
    # Synapse fills the directory from room statistics in the background.
    for _ in range(100):
        rooms = (await client.request("GET", "/_matrix/client/v3/publicRooms"))["chunk"]
        listed = [r for r in rooms if r.get("canonical_alias") == alias]
        if listed:
            return listed[0]
        await asyncio.sleep(0.3)
    raise AssertionError(f"{alias} is not in the room directory: {rooms}")


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()
