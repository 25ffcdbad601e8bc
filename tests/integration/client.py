"""A small Matrix client over the Client-Server API, as any client app speaks it.

Raw HTTP on purpose: tests see exactly the events and errors a user's client sees.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import quote

import aiohttp


class MatrixError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('errcode')}: {body.get('error')}")
        self.status = status
        self.errcode = body.get("errcode")
        self.body = body


class MatrixClient:
    def __init__(self, session: aiohttp.ClientSession, homeserver: str) -> None:
        self.session = session
        self.homeserver = homeserver.rstrip("/")
        self.user_id = ""
        self.token = ""
        self.next_batch: str | None = None

    async def request(self, method: str, path: str, body: Any = None,
                      params: dict[str, str] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(method, f"{self.homeserver}{path}", json=body,
                                        params=params, headers=headers) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise MatrixError(resp.status, data or {})
            return data

    async def login(self, user_id: str, password: str) -> MatrixClient:
        data = await self.request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
        })
        self.user_id, self.token = data["user_id"], data["access_token"]
        return self

    async def resolve_alias(self, alias: str) -> str:
        data = await self.request("GET", f"/_matrix/client/v3/directory/room/{quote(alias)}")
        return data["room_id"]

    async def join(self, room: str) -> str:
        data = await self.request("POST", f"/_matrix/client/v3/join/{quote(room)}", {})
        return data["room_id"]

    async def leave(self, room_id: str) -> None:
        await self.request("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/leave", {})

    async def create_dm(self, other: str) -> str:
        data = await self.request("POST", "/_matrix/client/v3/createRoom", {
            "invite": [other], "is_direct": True, "preset": "trusted_private_chat"})
        return data["room_id"]

    async def send(self, room_id: str, content: dict[str, Any],
                   event_type: str = "m.room.message") -> str:
        txn = uuid.uuid4().hex
        data = await self.request(
            "PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/{event_type}/{txn}", content)
        return data["event_id"]

    async def send_text(self, room_id: str, text: str) -> str:
        return await self.send(room_id, {"msgtype": "m.text", "body": text})

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        return await self.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{event_type}/{state_key}")

    async def full_state(self, room_id: str) -> list[dict[str, Any]]:
        return await self.request(  # type: ignore[return-value]
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state")

    async def messages(self, room_id: str, limit: int = 100) -> list[dict[str, Any]]:
        data = await self.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages",
                                  params={"dir": "b", "limit": str(limit)})
        return list(reversed(data["chunk"]))

    async def wait_for_message(self, room_id: str, predicate: Any,
                               timeout: float = 30.0) -> dict[str, Any]:
        """Poll the room's timeline until an event matches; fail with what was seen."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen = await self.messages(room_id)
            for event in seen:
                if predicate(event):
                    return event
            await asyncio.sleep(0.3)
        summary = [(e.get("sender"), e.get("type"), e.get("content", {}).get("body"))
                   for e in seen]
        raise AssertionError(f"no matching event in {room_id} after {timeout} s; saw {summary}")

    async def wait_for_invite(self, inviter: str, timeout: float = 30.0) -> str:
        """The room a user invites this client to, as its /sync shows the invite."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sync = await self.sync(timeout_ms=1000)
            for room_id, room in sync.get("rooms", {}).get("invite", {}).items():
                events = room.get("invite_state", {}).get("events", [])
                if any(e.get("sender") == inviter for e in events):
                    return room_id
            await asyncio.sleep(0.1)
        raise AssertionError(f"no invite from {inviter} within {timeout} s")

    async def sync(self, timeout_ms: int = 0) -> dict[str, Any]:
        params = {"timeout": str(timeout_ms)}
        if self.next_batch:
            params["since"] = self.next_batch
        data = await self.request("GET", "/_matrix/client/v3/sync", params=params)
        self.next_batch = data["next_batch"]
        return data
