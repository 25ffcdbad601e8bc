"""The contacts bridge is killed in the middle of a vCard import sent in a DM.

Two places, each a fault point in bridges/contacts/handlers.py (exit 137, like
SIGKILL), on a 3,000-contact vCard that arrives in several chunks:

- contacts.import_chunk: part of the file read, nothing stored yet.
- contacts.before_summary: the quota charged and the run recorded, no summary sent.

The file's event was stored by the bridge's inbox before the crash and is handled
again after the restart. What must hold: one summary, the quota charged once, one
run recorded (the bridge keeps only those counters and hashes: "half-applied" would
be a charge without its run, or either of them twice).
"""

from __future__ import annotations

import random
from typing import Any

import phonenumbers
import pytest

from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import upload, vcard
from tests.reliability.harness import Harness, timeline, until

CONTACTS = 3000


def _numbers(count: int) -> list[str]:
    """Valid Norwegian mobile numbers, spread out (a sweep of close ones is refused)."""
    rng = random.Random(11)
    numbers: set[str] = set()
    while len(numbers) < count:
        candidate = f"+474{rng.randrange(10**7):07d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            numbers.add(candidate)
    return sorted(numbers)


def _replies(events: list[dict[str, Any]], bot: str, to: str) -> list[str]:
    return [e["content"]["body"] for e in events
            if e["sender"] == bot and e["type"] == "m.room.message"
            and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get(
                "event_id") == to]


async def _dm_with_bot(user: MatrixClient, bot: str) -> str:
    room_id = await user.create_dm(bot)
    await user.wait_for_message(room_id, lambda e: e["type"] == "m.room.member"
                                and e["state_key"] == bot
                                and e["content"]["membership"] == "join")
    return room_id


@pytest.mark.parametrize("fault", ["contacts.import_chunk=2", "contacts.before_summary=1"])
async def test_an_import_cut_by_a_crash_is_applied_and_answered_once(harness: Harness, http,
                                                                     fault: str) -> None:
    harness.start_synapse()
    harness.start_contacts(env={"MERCATO_FAULTS": fault})
    bot = harness.config.user_id(harness.config.contacts.bot_localpart)
    user = await new_user(harness, http, "importer")
    room_id = await _dm_with_bot(user, bot)
    data = vcard([(f"Friend {n}", number, None) for n, number in enumerate(_numbers(CONTACTS))])
    assert len(data) > 3 * 64 * 1024, "the file must arrive in several chunks"
    mxc = await upload(user, data, "text/vcard")
    file_id = await user.send(room_id, {
        "msgtype": "m.file", "body": "contacts.vcf", "filename": "contacts.vcf", "url": mxc,
        "info": {"mimetype": "text/vcard", "size": len(data)}})
    assert harness.contacts is not None
    await until(lambda: harness.contacts.poll() is not None, 60, f"the crash at {fault}")
    assert harness.contacts.returncode == 137
    charged = "SELECT COALESCE(SUM(used), 0) FROM quota_use WHERE subject=?"
    runs = "SELECT COUNT(*) FROM import_run WHERE user_id=?"
    subject = f"user:{user.user_id}"
    before = (harness.contacts_rows(charged, subject)[0][0],
              harness.contacts_rows(runs, user.user_id)[0][0])
    assert before == ((CONTACTS, 1) if "before_summary" in fault else (0, 0)), before
    assert _replies(await timeline(user, room_id), bot, file_id) == []

    harness.start_contacts()
    await until(lambda: harness.contacts_rows(
        "SELECT COUNT(*) FROM as_inbox WHERE event_id=? AND handled_at IS NOT NULL",
        file_id)[0][0] == 1, 120, "the file handled after the restart")
    # Handling records the summary in the outbox; it is sent a moment later.
    await until(lambda: harness.contacts_rows(
        "SELECT COUNT(*) FROM outbound_message WHERE room_id=? AND state='pending'",
        room_id)[0][0] == 0, 60, "the summary sent")
    summaries = _replies(await timeline(user, room_id), bot, file_id)
    assert len(summaries) == 1, summaries
    assert f"{CONTACTS:,}" in summaries[0] or str(CONTACTS) in summaries[0], summaries[0]
    assert harness.contacts_rows(charged, subject)[0][0] == CONTACTS, "charged twice"
    assert harness.contacts_rows(runs, user.user_id)[0][0] == 1, "run recorded twice"
    print(f"\nRESULT contacts fault={fault} contacts={CONTACTS} summaries=1 "
          f"charged={CONTACTS} runs=1 lost=0 doubled=0")
