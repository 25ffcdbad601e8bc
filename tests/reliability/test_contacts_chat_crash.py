"""The contacts bridge dies between creating a room and recording it.

Two places, fault points in bridges/contacts/space.py (exit 137, like SIGKILL), hit
while the bridge handles an importer's ✅ on a vCard summary:

- contacts.chat.created: the chat with the match exists (both invited), not recorded.
- contacts.space.created: the chat is recorded, the importer's "Contacts" space exists
  (the importer invited), not recorded.

The ✅ was stored by the bridge's inbox before the crash and is handled again after the
restart. Rooms cannot be created idempotently, so the retry must find the room the
first try made (by what its creation content says it is for): one chat, one space,
one answer — not a second invitation for each.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import (
    _reply_to,
    become_findable,
    open_bridge_dm,
    react,
    send_file,
    unique_number,
    vcard,
)
from tests.reliability.harness import Harness, timeline, until
from tests.verification_sinks import MailSink, SmsGateway, contacts_settings


@pytest.fixture
def bridge_harness(tmp_path: Path,
                   code_sinks: tuple[SmsGateway, MailSink]) -> Iterator[Harness]:
    running = Harness(tmp_path, contacts=contacts_settings(*code_sinks))
    try:
        yield running
    finally:
        running.stop_all()


class Invitations:
    """The rooms a user is invited to, kept up to date by incremental syncs (a second
    initial sync within minutes would be Synapse's cached answer to the first)."""

    def __init__(self, client: MatrixClient) -> None:
        self.client = client
        self.rooms: dict[str, list[dict[str, Any]]] = {}

    async def now(self) -> dict[str, list[dict[str, Any]]]:
        sync = await self.client.sync()
        rooms = sync.get("rooms", {})
        for room_id, room in rooms.get("invite", {}).items():
            self.rooms[room_id] = room.get("invite_state", {}).get("events", [])
        for gone in (*rooms.get("join", {}), *rooms.get("leave", {})):
            self.rooms.pop(gone, None)
        return dict(self.rooms)


def _is_space(stripped: list[dict[str, Any]]) -> bool:
    return any(e["type"] == "m.room.create" and e["content"].get("type") == "m.space"
               for e in stripped)


@pytest.mark.parametrize("fault", ["contacts.chat.created", "contacts.space.created"])
async def test_a_chat_or_space_created_before_a_crash_is_not_created_again(
        bridge_harness: Harness, code_sinks: tuple[SmsGateway, MailSink], fault: str) -> None:
    harness = bridge_harness
    harness.start_synapse()
    harness.start_contacts()
    bot = harness.config.user_id(harness.config.contacts.bot_localpart)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as http:
        ola = await new_user(harness, http, "crashola")
        importer = await new_user(harness, http, "crashimporter")
        e164, raw = unique_number("4")
        ola_room = await open_bridge_dm(ola, harness)
        await become_findable(ola, harness, ola_room, code_sinks,
                              f"findable phone {raw}", e164)
        room_id = await open_bridge_dm(importer, harness)
        answer = await send_file(importer, harness, room_id,
                                 vcard([("Ola", raw, None)]), "contacts.vcf", "text/vcard")
        await importer.wait_for_message(room_id, lambda e: e["type"] == "m.reaction"
                                        and e["sender"] == bot)

        importer_invites, ola_invites = Invitations(importer), Invitations(ola)
        assert await importer_invites.now() == {} and await ola_invites.now() == {}
        harness.stop_contacts()
        harness.start_contacts(env={"MERCATO_FAULTS": f"{fault}=1"})
        confirm = await react(importer, room_id, answer["event_id"], "✅")
        assert harness.contacts is not None
        await until(lambda: harness.contacts.poll() is not None, 60, f"the crash at {fault}")
        assert harness.contacts.returncode == 137
        made = await importer_invites.now()
        assert len(made) == (1 if fault == "contacts.chat.created" else 2), made

        harness.start_contacts()
        await until(lambda: harness.contacts_rows(
            "SELECT COUNT(*) FROM as_inbox WHERE event_id=? AND handled_at IS NOT NULL",
            confirm)[0][0] == 1, 60, "the ✅ handled after the restart")
        await importer.wait_for_message(room_id, _reply_to(answer["event_id"], bot),
                                        timeout=60)

        invited = await importer_invites.now()
        spaces = [room for room, state in invited.items() if _is_space(state)]
        chats = [room for room, state in invited.items() if not _is_space(state)]
        assert len(spaces) == 1 and len(chats) == 1, invited
        assert set(made) <= set(invited), "the rooms made before the crash are the ones kept"
        assert list(await ola_invites.now()) == chats
        assert harness.contacts_rows("SELECT COUNT(DISTINCT room_id) FROM opened_chat")[0][0] == 1
        opened = [e["content"]["body"] for e in await timeline(importer, room_id)
                  if e["sender"] == bot and e["type"] == "m.room.message"
                  and "I opened a chat" in e["content"]["body"]]
        assert len(opened) == 1, opened
        print(f"\nRESULT contacts fault={fault} chats=1 spaces=1 answers=1")
