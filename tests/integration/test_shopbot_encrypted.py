"""The shop bot reads and answers encrypted DMs, as it must for Element users.

The user is a second nio client with its own key store: it creates a DM encrypted from
its first event, shares its room key with the bot's device, and decrypts the answer.
The raw Client-Server API, as the same user, shows what the server holds: ciphertext.
"""

from __future__ import annotations

import json
import time
import uuid
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

from mercato.devnet import start_network, write_test_config
from mercato.matrix.admin import register_user
from tests.integration.client import MatrixClient

if TYPE_CHECKING:
    from mercato.devnet import RunningNetwork

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
                       store: Path) -> EncryptedUser:
        localpart, password = f"buyer-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await self.sync(timeout_ms=1000)
            room = self.client.rooms.get(created.room_id)
            if room and bot in room.users and bot not in room.invited_users:
                assert room.encrypted
                return created.room_id
        raise AssertionError(f"{bot} did not join {created.room_id} within 30 s")

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


async def assert_ping_answered(user: EncryptedUser, room_id: str, bot: str) -> tuple[str, str]:
    ping = await user.send(room_id, "ping")
    pong = await user.reply_to(room_id, ping, bot)
    assert pong.decrypted, "the bot's answer in an encrypted room must be encrypted"
    assert pong.source["type"] == "m.room.message"
    assert pong.source["content"]["msgtype"] == "m.notice"
    assert pong.source["content"]["body"] == "pong"
    return ping, pong.event_id


async def test_the_bot_answers_an_encrypted_dm(network: RunningNetwork,
                                               http: aiohttp.ClientSession,
                                               tmp_path: Path) -> None:
    bot = network.demo["shopbot"]
    user = await EncryptedUser.register(network, http, tmp_path / "buyer-keys")
    try:
        room_id = await user.encrypted_dm(bot)
        ping, pong = await assert_ping_answered(user, room_id, bot)

        # A command with arguments goes through the same path as in clear rooms.
        asked = await user.send(room_id, "!help ping")
        help_text = (await user.reply_to(room_id, asked, bot)).source["content"]["body"]
        assert "ping" in help_text

        # On the wire, both ways: ciphertext only.
        wire = {e["event_id"]: e for e in await (await user.raw(http, network.hs_url))
                .messages(room_id)}
        for event_id in (ping, pong, asked):
            assert wire[event_id]["type"] == "m.room.encrypted"
            assert wire[event_id]["content"]["algorithm"] == MEGOLM
            assert "body" not in wire[event_id]["content"]
        assert wire[pong]["sender"] == bot
    finally:
        await user.close()


async def test_an_unreadable_message_is_reported_once(network: RunningNetwork,
                                                      http: aiohttp.ClientSession,
                                                      tmp_path: Path) -> None:
    bot = network.demo["shopbot"]
    user = await EncryptedUser.register(network, http, tmp_path / "buyer-keys")
    try:
        room_id = await user.encrypted_dm(bot)
        # A room key that never reaches the bot, as when a client missed its device.
        user.client.olm.create_outbound_group_session(room_id)
        user.client.olm.outbound_group_sessions[room_id].shared = True
        first = await user.send(room_id, "ping")
        told = await user.reply_to(room_id, first, bot)
        assert told.source["content"]["body"].startswith("I could not decrypt your message")
        assert "send it again" in told.source["content"]["body"]
        second = await user.send(room_id, "ping")

        # A new room key, shared properly: the bot reads and answers again.
        user.client.invalidate_outbound_session(room_id)
        ping, _ = await assert_ping_answered(user, room_id, bot)
        # The bot handles events in order, so its answer to `second` would be here by now.
        replies = user.replies_from(room_id, bot)
        assert second not in replies, "the bot must say it cannot read a session only once"
        assert set(replies) == {first, ping}
    finally:
        await user.close()


def bot_device(network: RunningNetwork) -> str:
    session = json.loads((network.config.data_path / "shopbot" / "session.json").read_text())
    return str(session["device_id"])


async def published_keys(user: MatrixClient, bot: str) -> dict[str, str]:
    """The bot's devices as the server hands them to anyone: device ID → ed25519 key."""
    keys = await user.request("POST", "/_matrix/client/v3/keys/query",
                              {"device_keys": {bot: []}})
    return {device: info["keys"][f"ed25519:{device}"]
            for device, info in keys["device_keys"].get(bot, {}).items()}


async def test_the_bot_keeps_its_keys_across_a_restart(tmp_path: Path) -> None:
    """The whole network restarts twice: once as is, once with the bot's login lost."""
    (tmp_path / "net").mkdir()
    config_path = write_test_config(tmp_path / "net")
    network = start_network(config_path, log_name="first.out")
    user: EncryptedUser | None = None
    try:
        # No kept-alive connections: the homeserver behind them is restarted.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) \
                as http:
            bot = network.demo["shopbot"]
            user = await EncryptedUser.register(network, http, tmp_path / "buyer-keys")
            room_id = await user.encrypted_dm(bot)
            await assert_ping_answered(user, room_id, bot)
            device = bot_device(network)
            before = await published_keys(await user.raw(http, network.hs_url), bot)
            assert list(before) == [device]
            room_key = user.client.olm.outbound_group_sessions[room_id].id

            assert network.stop() == 0, network.output()[-3000:]
            network = start_network(config_path, log_name="second.out")

            # The same room key as before the restart: only the bot's stored copy reads it.
            await assert_ping_answered(user, room_id, bot)
            assert user.client.olm.outbound_group_sessions[room_id].id == room_key
            assert bot_device(network) == device
            after = await published_keys(await user.raw(http, network.hs_url), bot)
            assert after == before, "the bot must come back as the same device, same keys"

            # The login is lost, the key store stays: a new device, and the old one retired.
            assert network.stop() == 0, network.output()[-3000:]
            state_dir = network.config.data_path / "shopbot"
            (state_dir / "session.json").unlink()
            network = start_network(config_path, log_name="third.out")
            new_device = bot_device(network)
            assert new_device != device
            assert list(await published_keys(await user.raw(http, network.hs_url), bot)) \
                == [new_device]
            assert [p.name for p in state_dir.glob(f"{bot}_*")] == [f"{bot}_{new_device}.db"]
            await assert_ping_answered(user, await user.encrypted_dm(bot), bot)
    finally:
        if user is not None:
            await user.close()
        assert network.stop() == 0, network.output()[-3000:]
