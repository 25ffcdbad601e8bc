"""A merchant runs a shop by talking to the shop bot, against the real network.

Fresh users DM @shopbot the way any client does; the commerce HTTP API (with the
operator's token) is the independent witness of what the commands changed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import pytest

from mercato.matrix.admin import register_user
from tests.integration.client import MatrixClient

if TYPE_CHECKING:
    from mercato_ops.testnet import RunningNetwork


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_user(network: RunningNetwork, http: aiohttp.ClientSession,
                   name: str) -> MatrixClient:
    localpart, password = unique(name), uuid.uuid4().hex
    await register_user(http, network.hs_url, network.config.synapse.registration_shared_secret,
                        localpart, password)
    return await MatrixClient(http, network.hs_url).login(
        network.config.user_id(localpart), password)


class Chat:
    """A room with the shop bot, where a user types commands and reads the answers."""

    def __init__(self, user: MatrixClient, room_id: str, bot: str) -> None:
        self.user, self.room_id, self.bot = user, room_id, bot

    @classmethod
    async def direct(cls, network: RunningNetwork, user: MatrixClient) -> Chat:
        bot = network.demo["shopbot"]
        room_id = await user.create_dm(bot)
        await user.wait_for_message(room_id, lambda e: e["type"] == "m.room.member"
                                    and e["state_key"] == bot
                                    and e["content"]["membership"] == "join")
        return cls(user, room_id, bot)

    async def ask(self, text: str) -> dict[str, Any]:
        """Send a command; the bot's answer (a notice replying to it) is returned."""
        event_id = await self.user.send_text(self.room_id, text)

        def answers(event: dict[str, Any]) -> bool:
            relation = event.get("content", {}).get("m.relates_to", {})
            return (event.get("sender") == self.bot
                    and relation.get("m.in_reply_to", {}).get("event_id") == event_id)

        reply = await self.user.wait_for_message(self.room_id, answers)
        assert reply["content"]["msgtype"] == "m.notice"
        return reply["content"]

    async def say(self, text: str) -> str:
        return str((await self.ask(text))["body"])


class OperatorApi:
    """The commerce API with the operator's token: what the commands really changed."""

    def __init__(self, network: RunningNetwork, http: aiohttp.ClientSession) -> None:
        self.base = f"{network.commerce_url}/api/v1"
        self.headers = {"Authorization": f"Bearer {network.config.commerce.operator_token}"}
        self.http = http

    async def call(self, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> Any:
        async with self.http.request(method, self.base + path, json=body,
                                     headers=headers or self.headers) as resp:
            data = await resp.json(content_type=None)
            assert resp.status < 400, f"{method} {path}: {resp.status} {data}"
            return data


@pytest.fixture
def operator(network: RunningNetwork, http: aiohttp.ClientSession) -> OperatorApi:
    return OperatorApi(network, http)


async def test_a_merchant_applies_and_runs_the_shop_by_chat(
        network: RunningNetwork, http: aiohttp.ClientSession, operator: OperatorApi) -> None:
    owner = await new_user(network, http, "owner")
    chat = await Chat.direct(network, owner)
    slug = unique("shop")

    applied = await chat.say(f"shop apply {slug} My Shop --website https://myshop.example "
                             "--description Fresh fruit, every day")
    assert f"({slug})" in applied and "awaits the operator's approval" in applied
    shop = await operator.call("GET", f"/shops/{slug}")
    assert (shop["status"], shop["owner"], shop["name"]) == ("pending", owner.user_id,
                                                             "My Shop")
    assert (shop["website"], shop["description"]) == ("https://myshop.example",
                                                      "Fresh fruit, every day")
    assert "awaits the operator's approval" in await chat.say("shop status")

    await operator.call("POST", f"/shops/{slug}/approve", {})
    status = await chat.say("shop status")
    assert status.splitlines()[:2] == [f"My Shop ({slug}) — approved", "Your role: owner"]
    assert f"Shop account: @{network.config.commerce.user_prefix}{slug}:" in status

    editor = await new_user(network, http, "editor")
    added = await chat.say(f"staff add {editor.user_id} editor")
    assert added.startswith(f"{editor.user_id} is now editor of {slug}.")
    staff = await operator.call("GET", f"/shops/{slug}/staff")
    assert {(m["user_id"], m["role"]) for m in staff["staff"]} == {
        (owner.user_id, "owner"), (editor.user_id, "editor")}
    listed = await chat.ask("staff list")
    assert editor.user_id in listed["body"] and "<table>" in listed["formatted_body"]

    welcome = await chat.say("shop set welcome Hello! Ask us about today's fruit.")
    assert welcome == f"Welcome message of {slug} set to: Hello! Ask us about today's fruit."
    hours = await chat.say("shop set hours mon-fri 09:00-18:00 Europe/Paris")
    assert hours == f"Opening hours of {slug}: mon-fri 09:00-18:00 (Europe/Paris)."
    shop = await operator.call("GET", f"/shops/{slug}")
    assert shop["welcome_message"] == "Hello! Ask us about today's fruit."
    assert shop["opening_hours"]["fri"] == ["09:00-18:00"]

    # The key is shown once, in the DM, and works for the shop's own software.
    created = await chat.say("keys create Web shop sync")
    assert "only time this key is shown" in created
    key = next(word for word in created.split() if word.startswith("mk_"))
    mine = await operator.call("GET", "/merchant", headers={"Authorization": f"Bearer {key}"})
    assert mine["slug"] == slug
    key_id = (await operator.call("GET", f"/shops/{slug}/keys"))["keys"][0]["key_id"]
    assert key not in await chat.say("keys list")
    assert await chat.say(f"keys revoke {key_id}") == f"API key {key_id} of {slug} is revoked."

    removed = await chat.say(f"staff remove {editor.user_id}")
    assert removed == f"{editor.user_id} no longer works for {slug}."


async def test_who_is_not_staff_is_refused_clearly(
        network: RunningNetwork, http: aiohttp.ClientSession, operator: OperatorApi) -> None:
    owner = await new_user(network, http, "owner")
    slug = unique("shop")
    await operator.call("POST", "/shops", {"slug": slug, "name": "Corner Shop",
                                           "owner": owner.user_id})
    stranger = await new_user(network, http, "stranger")
    chat = await Chat.direct(network, stranger)

    refusal = await chat.say(f"staff add {stranger.user_id} owner --shop {slug}")
    assert refusal == (f"You are not staff of the shop '{slug}', so you cannot use "
                       "staff add there.")
    assert (await chat.say("staff list")).startswith("You do not work for any shop.")
    # Even past the bot's own check, the API refuses: nothing changed.
    staff = await operator.call("GET", f"/shops/{slug}/staff")
    assert [m["user_id"] for m in staff["staff"]] == [owner.user_id]

    # An editor may not do what only owners may.
    await operator.call("POST", f"/shops/{slug}/staff",
                        {"user_id": stranger.user_id, "role": "editor"})
    assert await chat.say(f"shop set welcome Hi --shop {slug}") == (
        f"Only an owner of '{slug}' can use shop set welcome; your role there is editor. "
        "Ask an owner.")


async def test_help_usage_and_suggestions(network: RunningNetwork,
                                          http: aiohttp.ClientSession) -> None:
    chat = await Chat.direct(network, await new_user(network, http, "buyer"))

    help_shop = await chat.say("help shop")
    assert "\nshop apply <slug> <name…> [--website https://…] [--description text…]" \
        in help_shop
    assert "\nshop status [slug]" in help_shop
    assert "\nshop set hours <days hours…> [--shop slug]" in help_shop

    assert (await chat.say("shpo status")).startswith(
        "Unknown command 'shpo'. Did you mean shop?")
    assert "Did you mean shop apply?" in await chat.say("apply my-shop My Shop")

    wrong = await chat.say("staff add alice editor")
    assert wrong.splitlines()[:2] == [
        "<@user:server>: 'alice' is not a Matrix ID; write it like @alice:example.org",
        "Usage: staff add <@user:server> <owner|editor|support|analyst> [--shop slug]"]
    assert (await chat.say("!ping")) == "pong"


async def test_buyers_browse_the_directory(network: RunningNetwork,
                                           http: aiohttp.ClientSession) -> None:
    chat = await Chat.direct(network, await new_user(network, http, "buyer"))
    demo = network.demo["shop"]
    everything = await chat.ask("shops")
    # Other tests share this network: the first page may be full of their shops.
    assert everything["body"].startswith("Shops:")
    assert "<table>" in everything["formatted_body"]
    found = await chat.say(f"shops {demo['name'].split()[-2]}")
    assert f"{demo['name']} ({demo['slug']})" in found
    assert (await chat.say("shops zzz-no-such-shop")).startswith(
        "No shop matches 'zzz-no-such-shop'.")


async def test_keys_are_never_created_in_a_group(
        network: RunningNetwork, http: aiohttp.ClientSession, operator: OperatorApi) -> None:
    owner = await new_user(network, http, "owner")
    other = await new_user(network, http, "other")
    slug = unique("shop")
    await operator.call("POST", "/shops", {"slug": slug, "name": "Group Shop",
                                           "owner": owner.user_id})
    bot = network.demo["shopbot"]
    room = await owner.request("POST", "/_matrix/client/v3/createRoom",
                               {"invite": [bot, other.user_id], "preset": "private_chat"})
    room_id = room["room_id"]
    await other.join(room_id)
    await owner.wait_for_message(room_id, lambda e: e["type"] == "m.room.member"
                                 and e["state_key"] == bot
                                 and e["content"]["membership"] == "join")
    chat = Chat(owner, room_id, bot)
    refusal = await chat.say("!keys create Leaky")
    assert refusal.startswith("!keys create works only in a direct chat with me")
    keys = await operator.call("GET", f"/shops/{slug}/keys")
    assert keys["keys"] == []
    assert await chat.say("!ping") == "pong"
    members = await owner.request(
        "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members")
    assert len(members["joined"]) == 3
