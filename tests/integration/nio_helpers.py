"""A Matrix user on a nio client with encryption on, as Element is: for encrypted-room tests.

It creates DMs encrypted from their first event, shares its room keys with every
device (trust on first use, like the shop bot) and decrypts what it receives.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    Event,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomPreset,
    RoomSendResponse,
    SyncResponse,
)

from mercato.matrix.admin import register_user
from tests.integration.client import MatrixClient

if TYPE_CHECKING:
    from mercato_ops.testnet import RunningNetwork

MEGOLM = "m.megolm.v1.aes-sha2"


def checked(response: Any) -> Any:
    assert not isinstance(response, ErrorResponse), str(response)
    return response


class EncryptedUser:
    """A Matrix user on a nio client with encryption on, keeping every event it synced."""

    def __init__(self, client: AsyncClient, password: str) -> None:
        self.client, self.password = client, password
        self.timeline: dict[str, list[Event]] = {}

    @classmethod
    async def register(cls, network: RunningNetwork, http: aiohttp.ClientSession,
                       store: Path, name: str = "buyer") -> EncryptedUser:
        localpart, password = f"{name}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        await register_user(http, network.hs_url,
                            network.config.synapse.registration_shared_secret,
                            localpart, password)
        store.mkdir(parents=True, exist_ok=True)
        client = AsyncClient(network.hs_url, network.config.user_id(localpart),
                             store_path=str(store),
                             config=AsyncClientConfig(encryption_enabled=True,
                                                      store_sync_tokens=False))
        assert isinstance(await client.login(password, device_name="test phone"),
                          LoginResponse)
        user = cls(client, password)
        await user.sync()
        return user

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    async def sync(self, timeout_ms: int = 0) -> None:
        """One sync, then the key traffic a client does between syncs."""
        response = checked(await self.client.sync(timeout=timeout_ms))
        assert isinstance(response, SyncResponse)
        for room_id, room in response.rooms.join.items():
            self.timeline.setdefault(room_id, []).extend(room.timeline.events)
        if self.client.should_upload_keys:
            checked(await self.client.keys_upload())
        if self.client.should_query_keys:
            checked(await self.client.keys_query())
        if self.client.should_claim_keys:
            checked(await self.client.keys_claim(self.client.get_users_for_key_claiming()))
        for sent in await self.client.send_to_device_messages():
            checked(sent)

    async def encrypted_dm(self, bot: str) -> str:
        """A DM with the bot, encrypted from its first event; returns once the bot joined."""
        created = checked(await self.client.room_create(
            is_direct=True, invite=[bot], preset=RoomPreset.trusted_private_chat,
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": MEGOLM}}]))
        assert isinstance(created, RoomCreateResponse)
        # Generous: on the scale profile under a loaded CI machine the join can be slow.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            await self.sync(timeout_ms=1000)
            room = self.client.rooms.get(created.room_id)
            if room and bot in room.users and bot not in room.invited_users:
                assert room.encrypted
                return created.room_id
        raise AssertionError(f"{bot} did not join {created.room_id} within 90 s")

    async def send(self, room_id: str, text: str) -> str:
        """Send an encrypted message (the room key goes to every device: trust on first use)."""
        sent = checked(await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text},
            ignore_unverified_devices=True))
        assert isinstance(sent, RoomSendResponse)
        return str(sent.event_id)

    async def reply_to(self, room_id: str, event_id: str, sender: str,
                       timeout: float = 30.0) -> Event:
        """The decrypted message of `sender` that replies to `event_id`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.timeline.get(room_id, []):
                if event.sender != sender:
                    continue
                assert not isinstance(event, MegolmEvent), \
                    f"could not decrypt {sender}'s message {event.event_id}"
                relation = event.source.get("content", {}).get("m.relates_to", {})
                if relation.get("m.in_reply_to", {}).get("event_id") == event_id:
                    return event
            await self.sync(timeout_ms=1000)
        seen = [(e.sender, type(e).__name__, e.source.get("content", {}).get("body"))
                for e in self.timeline.get(room_id, [])]
        raise AssertionError(f"no reply to {event_id} from {sender} in {timeout} s; saw {seen}")

    async def wait_for(self, room_id: str, predicate: Callable[[Event], bool],
                       timeout: float = 30.0) -> Event:
        """The first event of the room (decrypted where it could be) matching `predicate`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.timeline.get(room_id, []):
                if predicate(event):
                    return event
            await self.sync(timeout_ms=1000)
        seen = [(e.sender, type(e).__name__, e.source.get("content", {}).get("body"))
                for e in self.timeline.get(room_id, [])]
        raise AssertionError(f"no matching event in {room_id} in {timeout} s; saw {seen}")

    def replies_from(self, room_id: str, sender: str) -> dict[str, str]:
        """Decrypted replies of `sender` seen so far: replied-to event ID → body."""
        found = {}
        for event in self.timeline.get(room_id, []):
            content = event.source.get("content", {})
            replied = content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
            if event.sender == sender and replied and not isinstance(event, MegolmEvent):
                found[replied] = content.get("body", "")
        return found

    async def raw(self, http: aiohttp.ClientSession, hs_url: str) -> MatrixClient:
        """The same user on the plain Client-Server API: what the server stores."""
        return await MatrixClient(http, hs_url).login(self.user_id, self.password)

    async def close(self) -> None:
        await self.client.close()
