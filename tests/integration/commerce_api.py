"""The commerce HTTP API as its three kinds of callers reach it, and people to call it as.

Shop back-ends sign with an API key, the shop bot with the service token plus the
Matrix user it acts for, the operator with the operator token. Tests use
`CommerceApi` the same way and read answers as (status, JSON body).
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from mercato.matrix.admin import register_user
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def errcode(self) -> str | None:
        return self.body.get("errcode") if isinstance(self.body, dict) else None

    @property
    def error(self) -> str:
        return str(self.body.get("error", "")) if isinstance(self.body, dict) else ""


class CommerceApi:
    def __init__(self, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
        self.network = network
        self.http = http
        self.base = f"{network.commerce_url}/api/v1"

    # -- who is calling ---------------------------------------------------------------

    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.network.config.commerce.operator_token}"}

    def acting_as(self, user_id: str) -> dict[str, str]:
        """The shop bot's service token, acting for a Matrix user."""
        return {"Authorization": f"Bearer {self.network.config.commerce.service_token}",
                "X-Mercato-Acting-User": user_id}

    @staticmethod
    def key(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    # -- requests ---------------------------------------------------------------------

    async def call(self, method: str, path: str, auth: dict[str, str] | None = None,
                   json: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None) -> Answer:
        all_headers = {**(auth or {}), **(headers or {})}
        async with self.http.request(method, self.base + path, json=json, data=data,
                                     headers=all_headers) as resp:
            body = await resp.json(content_type=None) if await resp.read() else None
            return Answer(resp.status, body)

    async def get(self, path: str, auth: dict[str, str] | None = None) -> Answer:
        return await self.call("GET", path, auth)

    async def post(self, path: str, auth: dict[str, str] | None = None,
                   json: Any = None) -> Answer:
        return await self.call("POST", path, auth, json=json if json is not None else {})

    async def patch(self, path: str, auth: dict[str, str] | None, json: Any) -> Answer:
        return await self.call("PATCH", path, auth, json=json)

    async def delete(self, path: str, auth: dict[str, str] | None = None) -> Answer:
        return await self.call("DELETE", path, auth)

    # -- what most tests need first -------------------------------------------------------

    async def apply(self, owner: str, slug: str, name: str, **fields: Any) -> dict[str, Any]:
        answer = await self.post("/shops", self.acting_as(owner),
                                 {"slug": slug, "name": name, **fields})
        assert answer.status == 201, answer
        return answer.body

    async def approve(self, slug: str) -> dict[str, Any]:
        answer = await self.post(f"/shops/{slug}/approve", self.operator())
        assert answer.status == 200, answer
        return answer.body

    async def shop(self, slug: str) -> dict[str, Any]:
        answer = await self.get(f"/shops/{slug}", self.operator())
        assert answer.status == 200, answer
        return answer.body

    async def audit(self, slug: str) -> list[dict[str, Any]]:
        answer = await self.get(f"/shops/{slug}/audit", self.operator())
        assert answer.status == 200, answer
        return answer.body["entries"]

    async def staff(self, slug: str) -> dict[str, str]:
        answer = await self.get(f"/shops/{slug}/staff", self.operator())
        assert answer.status == 200, answer
        return {m["user_id"]: m["role"] for m in answer.body["staff"]}

    async def add_staff(self, slug: str, auth: dict[str, str], user_id: str,
                        role: str) -> Answer:
        return await self.post(f"/shops/{slug}/staff", auth, {"user_id": user_id, "role": role})

    async def remove_staff(self, slug: str, auth: dict[str, str], user_id: str) -> Answer:
        return await self.delete(f"/shops/{slug}/staff/{quote(user_id, safe='')}", auth)


def unique_slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_user(network: RunningNetwork, http: aiohttp.ClientSession,
                   name: str) -> MatrixClient:
    """A fresh account on the homeserver, logged in as any client app would."""
    localpart = f"{name}-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(12)
    created = await register_user(http, network.hs_url,
                                  network.config.synapse.registration_shared_secret,
                                  localpart, password)
    assert created
    return await MatrixClient(http, network.hs_url).login(f"@{localpart}:localhost", password)


async def open_shop(api: CommerceApi, owner: str, prefix: str, **fields: Any) -> str:
    """Apply as `owner` and have the operator approve; returns the slug."""
    slug = unique_slug(prefix)
    await api.apply(owner, slug, fields.pop("name", f"Shop {slug}"), **fields)
    await api.approve(slug)
    return slug


SMALL_SYNC = '{"room": {"timeline": {"limit": 1}}, "presence": {"types": []}}'


async def invites(client: MatrixClient) -> dict[str, Any]:
    """The rooms a user is invited to, as a client's first /sync shows them."""
    data = await client.request("GET", "/_matrix/client/v3/sync",
                                params={"timeout": "0", "filter": SMALL_SYNC})
    return data.get("rooms", {}).get("invite", {})


async def wait_for_invite(client: MatrixClient, room_id: str,
                          timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while room_id not in (pending := await invites(client)):
        assert time.monotonic() < deadline, f"{client.user_id} was never invited to {room_id}"
        await asyncio.sleep(0.2)
    return pending[room_id]


async def accept_invite(client: MatrixClient, room_id: str) -> None:
    """Wait until the room's invite reaches the user's /sync, then join it."""
    await wait_for_invite(client, room_id)
    await client.join(room_id)


def commerce_rows(network: RunningNetwork, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the commerce database directly (SQLite, or PostgreSQL in the scale profile)."""
    return network.rows("commerce", sql, *args)


def is_threaded_in(root: str):
    def matches(event: dict[str, Any]) -> bool:
        relation = event.get("content", {}).get("m.relates_to", {})
        return relation.get("rel_type") == "m.thread" and relation.get("event_id") == root
    return matches


def from_sender(sender: str, body: str | None = None, contains: str | None = None):
    def matches(event: dict[str, Any]) -> bool:
        if event.get("type") != "m.room.message" or event.get("sender") != sender:
            return False
        text = event.get("content", {}).get("body", "")
        return (body is None or text == body) and (contains is None or contains in text)
    return matches


def joined(user_id: str):
    def matches(event: dict[str, Any]) -> bool:
        return (event.get("type") == "m.room.member" and event.get("state_key") == user_id
                and event["content"].get("membership") == "join")
    return matches


def thread_reply(root: str, text: str, in_reply_to: str) -> dict[str, Any]:
    """What a client sends when someone answers inside a thread."""
    return {"msgtype": "m.text", "body": text,
            "m.relates_to": {"rel_type": "m.thread", "event_id": root, "is_falling_back": True,
                             "m.in_reply_to": {"event_id": in_reply_to}}}


async def profile(client: MatrixClient, user_id: str) -> dict[str, Any]:
    return await client.request("GET", f"/_matrix/client/v3/profile/{quote(user_id)}")
