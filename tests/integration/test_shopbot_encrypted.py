"""The shop bot reads and answers encrypted DMs, as it must for Element users.

The user is a second nio client with its own key store (`nio_helpers.EncryptedUser`):
it creates a DM encrypted from its first event, shares its room key with the bot's
device, and decrypts the answer. The raw Client-Server API, as the same user, shows
what the server holds: ciphertext.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from mercato_ops.testnet import start_network, write_test_config
from tests.integration.client import MatrixClient
from tests.integration.nio_helpers import MEGOLM, EncryptedUser

if TYPE_CHECKING:
    from mercato_ops.testnet import RunningNetwork


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
        code = network.stop()
        network.drop_databases()
        assert code == 0, network.output()[-3000:]
