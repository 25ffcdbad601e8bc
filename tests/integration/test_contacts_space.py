"""The chats the bridge opens from a vCard summary, and the "Contacts" space it keeps,
as the importer's Matrix client sees them against a real Synapse."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import (
    _reply_to,
    become_findable,
    command,
    open_bridge_dm,
    react,
    send_file,
    unique_number,
    vcard,
)
from tests.verification_sinks import MailSink, SmsGateway


async def invites(client: MatrixClient, want: int, timeout: float = 60) -> dict[str, list]:
    """Rooms this client is invited to (room → stripped state), once there are `want`."""
    found: dict[str, list] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync = await client.sync(timeout_ms=1000)
        for room_id, room in sync.get("rooms", {}).get("invite", {}).items():
            found[room_id] = room.get("invite_state", {}).get("events", [])
        if len(found) >= want:
            return found
    raise AssertionError(f"{len(found)} invitations after {timeout} s, wanted {want}")


def is_space(stripped: list[dict[str, Any]]) -> bool:
    return any(e["type"] == "m.room.create" and e["content"].get("type") == "m.space"
               for e in stripped)


async def space_children(client: MatrixClient, space_id: str) -> set[str]:
    """The space's children, from the /hierarchy API as the user's client reads them."""
    hierarchy = await client.request(
        "GET", f"/_matrix/client/v1/rooms/{quote(space_id)}/hierarchy", params={"max_depth": "1"})
    root = next(room for room in hierarchy["rooms"] if room["room_id"] == space_id)
    assert root["room_type"] == "m.space" and root["name"] == "Contacts"
    children = {event["state_key"] for event in root["children_state"]
                if event["type"] == "m.space.child" and event["content"].get("via")}
    listed = {room["room_id"] for room in hierarchy["rooms"]} - {space_id}
    assert listed == children  # each child is a room the user may see
    return children


async def members(client: MatrixClient, room_id: str) -> dict[str, str]:
    return {e["state_key"]: e["content"]["membership"]
            for e in await client.full_state(room_id) if e["type"] == "m.room.member"}


async def bot_gone(client: MatrixClient, room_id: str, bot: str) -> dict[str, str]:
    """The room's members once the bot has left it."""
    deadline = time.monotonic() + 30
    while (await members(client, room_id)).get(bot) != "leave" and \
            time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    return await members(client, room_id)


async def test_confirmed_matches_become_chats_listed_in_the_contacts_space(
        network: RunningNetwork, http: aiohttp.ClientSession,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    bot = network.config.user_id(network.config.contacts.bot_localpart)
    ola = await new_user(network, http, "spaceola")
    per = await new_user(network, http, "spaceper")
    importer = await new_user(network, http, "spaceimporter")
    numbers = {}
    for person in (ola, per):
        e164, raw = unique_number("4")
        numbers[person.user_id] = raw
        room = await open_bridge_dm(person, network)
        await become_findable(person, network, room, code_sinks, f"findable phone {raw}", e164)
    _kari_e164, kari_raw = unique_number("9")  # not here

    room_id = await open_bridge_dm(importer, network)
    await importer.sync()  # invitations from here on are the bridge's new ones
    book = vcard([("Ola", numbers[ola.user_id], None), ("Per", numbers[per.user_id], None),
                  ("Kari", kari_raw, None)])
    answer = await send_file(importer, network, room_id, book, "contacts.vcf", "text/vcard")
    await importer.wait_for_message(room_id, lambda e: e["type"] == "m.reaction"
                                    and e["sender"] == bot)
    await react(importer, room_id, answer["event_id"], "✅")
    opened = await importer.wait_for_message(room_id, _reply_to(answer["event_id"], bot),
                                             timeout=60)
    assert "I opened a chat with each" in opened["content"]["body"]

    # Invited to the space and to one chat per match, each chat shared with that match.
    invited = await invites(importer, 3)
    spaces = [room for room, state in invited.items() if is_space(state)]
    assert len(spaces) == 1
    space_id = spaces[0]
    chats = set(invited) - {space_id}
    for chat in chats:
        state = invited[chat]
        assert any(e["type"] == "m.room.member" and e["state_key"] == importer.user_id
                   and e["content"].get("is_direct") for e in state)
        assert chat in opened["content"]["body"] or quote(chat, safe="!:") in \
            opened["content"]["body"]
    await importer.join(space_id)
    assert await space_children(importer, space_id) == chats

    # Ola accepts his invitation: the bot stays while the importer is still invited,
    # and leaves once both are in — the chat is then Ola's and the importer's alone.
    ola_chat = (await invites(ola, 1)).keys() & chats
    assert len(ola_chat) == 1
    chat = ola_chat.pop()
    await ola.join(chat)
    await asyncio.sleep(1)
    assert await members(ola, chat) == {ola.user_id: "join", importer.user_id: "invite",
                                        bot: "join"}
    await importer.join(chat)
    assert await bot_gone(ola, chat, bot) == {ola.user_id: "join", importer.user_id: "join",
                                              bot: "leave"}
    await ola.send_text(chat, "Hei!")
    await importer.wait_for_message(chat, lambda e: e.get("sender") == ola.user_id)

    # Asking again opens nothing new; the space lists the same chats.
    reply = await command(importer, network, room_id, "dm all")
    assert "I opened a chat with each" in reply["content"]["body"]
    assert await space_children(importer, space_id) == chats
    sync = await importer.sync()
    assert not sync.get("rooms", {}).get("invite")  # no new invitation

    # Someone who left their space is invited back when a new chat is added to it.
    await importer.leave(space_id)
    lena = await new_user(network, http, "spacelena")
    lena_e164, lena_raw = unique_number("4")
    lena_room = await open_bridge_dm(lena, network)
    await become_findable(lena, network, lena_room, code_sinks, f"findable phone {lena_raw}",
                          lena_e164)
    await send_file(importer, network, room_id, vcard([("Lena", lena_raw, None)]),
                    "more.vcf", "text/vcard")
    reply = await command(importer, network, room_id, f"dm {lena.user_id}")
    assert "I opened a chat with each" in reply["content"]["body"]
    again = await invites(importer, 2)
    assert space_id in again and is_space(again[space_id])
    await importer.join(space_id)
    assert len(await space_children(importer, space_id)) == len(chats) + 1


async def test_the_second_person_gets_in_after_the_first_left_again(
        network: RunningNetwork, http: aiohttp.ClientSession,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    bot = network.config.user_id(network.config.contacts.bot_localpart)
    found = await new_user(network, http, "spacefound")
    importer = await new_user(network, http, "spacefinder")
    e164, raw = unique_number("4")
    found_room = await open_bridge_dm(found, network)
    await become_findable(found, network, found_room, code_sinks, f"findable phone {raw}", e164)
    room_id = await open_bridge_dm(importer, network)
    await importer.sync()
    await send_file(importer, network, room_id, vcard([("Found", raw, None)]), "c.vcf",
                    "text/vcard")
    await command(importer, network, room_id, f"dm {found.user_id}")
    chat = next(iter((await invites(found, 1)).keys()))

    # The one found joins and leaves again before the importer has answered.
    await found.join(chat)
    await found.leave(chat)
    await asyncio.sleep(1)
    await importer.join(chat)  # refused if no one of this server were left in the room
    assert await bot_gone(importer, chat, bot) == {
        importer.user_id: "join", found.user_id: "leave", bot: "leave"}
