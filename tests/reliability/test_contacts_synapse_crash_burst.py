"""Synapse dies during a burst of contacts-bot replies and XMPP messages relayed into a
portal: none lost, none doubled.

Every message the contacts bridge sends goes through its outbox (mercato/matrix/outbox.py).
Here Synapse is SIGKILLed at the worst moment — it has persisted one of the burst's
messages but its answer never reaches the bridge (the proxy of test_synapse_crash.py) —
while the bot answers a user's commands and a friend's XMPP messages are relayed into
their portal, and it stays down long enough for any in-line retry to give up. Synapse's
transaction-ID cache is gone with it, so only the outbox (attempt recorded first, then a
look in the room for the message's marker) stands between a retry and a doubled message,
and only its backoff brings a message out after a long outage without a later one to
push it. Checked as the user sees it, through /messages, with no message sent after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import command, open_bridge_dm
from tests.integration.test_contacts_xmpp import accounts, bodies_from, ghost_of, with_roster
from tests.integration.xmpp_server import Friend, Prosody, prosody_running
from tests.reliability.harness import Harness, tail, timeline, until
from tests.reliability.test_synapse_crash_burst import GatedProxy
from tests.verification_sinks import MailSink, SmsGateway, contacts_settings

COMMANDS = 3
RELAYS = 4
KILL_ON = 3  # the burst's 3rd message send
DOWN_SECONDS = 20  # longer than send_once's own retries (about 15 s)

pytestmark = pytest.mark.single_profile


@pytest.fixture
def prosody(tmp_path: Path) -> Iterator[Prosody]:
    with prosody_running(tmp_path / "prosody") as server:
        yield server


class ContactsProxy(GatedProxy):
    """The crash proxy on the bridge's sends (`mercato.contacts.…` txnIds)."""

    def __init__(self, harness: Harness) -> None:
        super().__init__(harness)
        self.txn_prefix = "mercato.contacts."


def _answers(events: list[dict[str, Any]], bot: str, to: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "m.room.message" and e["sender"] == bot and
            ((e["content"].get("m.relates_to") or {}).get("m.in_reply_to") or {})
            .get("event_id") == to]


async def test_synapse_killed_during_a_burst_of_bot_replies_and_relays(
        tmp_path: Path, prosody: Prosody, http: aiohttp.ClientSession) -> None:
    sms, mail = SmsGateway(token="crash-burst-sms-token").start(), MailSink().start()
    (tmp_path / "net").mkdir()
    harness = Harness(tmp_path / "net", contacts={
        **contacts_settings(sms, mail), "networks": {"xmpp": prosody.connector_settings()}})
    proxy = ContactsProxy(harness)
    await proxy.start()
    try:
        harness.route_contacts_through(proxy.port)
        harness.start_synapse()
        await asyncio.to_thread(harness.start_contacts)
        await _burst_through_a_crash(harness, prosody, http, proxy)
    finally:
        await asyncio.to_thread(harness.stop_all)
        await proxy.stop()
        sms.stop()
        mail.stop()


async def _burst_through_a_crash(harness: Harness, prosody: Prosody,
                                 http: aiohttp.ClientSession, proxy: ContactsProxy) -> None:
    theirs = (await accounts(prosody, "kim"))["kim"]
    mine = await asyncio.to_thread(prosody.register, f"jon{uuid.uuid4().hex[:6]}",
                                   f"pw-{uuid.uuid4().hex[:10]}")
    await with_roster(prosody, mine, {theirs: "Kim"})
    me: MatrixClient = await new_user(harness, http, "jon")
    bot = harness.config.user_id(harness.config.contacts.bot_localpart)
    bot_room = await open_bridge_dm(me, harness)
    reply = await command(me, harness, bot_room, f"xmpp login {mine} {prosody.passwords[mine]}")
    assert f"Logged in to XMPP as {mine}" in reply["content"]["body"], reply["content"]["body"]
    ghost = ghost_of(harness, theirs)
    portal = await me.wait_for_invite(ghost, timeout=60)
    await me.join(portal)
    friend = await Friend(prosody, theirs).connect()

    def queued(kind: str) -> int:
        return int(harness.contacts_rows(
            "SELECT COUNT(*) FROM outbound_message WHERE kind=?", kind)[0][0])

    # The burst, queued while the bridge's sends are held back; then the Synapse kill
    # falls on its KILL_ON-th message send.
    before = {kind: queued(kind) for kind in ("reply", "relayed")}
    proxy.gate.clear()
    asked = [await me.send_text(bot_room, "help") for _ in range(COMMANDS)]
    relays = [f"Relay {n}" for n in range(RELAYS)]
    for body in relays:
        friend.send(mine, body)

    await until(lambda: queued("reply") == before["reply"] + COMMANDS
                and queued("relayed") == before["relayed"] + RELAYS, 60, "the burst queued")
    proxy.fault_on = proxy.sends + KILL_ON
    proxy.gate.set()
    try:
        await until(proxy.faulted.is_set, 60, f"message send {KILL_ON} of the burst")
    except AssertionError as e:
        raise AssertionError(f"{e}; saw {proxy.sends} sends; bridge log:\n"
                             f"{tail(harness.contacts_log_path)}") from None
    await asyncio.sleep(DOWN_SECONDS)
    await asyncio.to_thread(harness.start_synapse)

    try:
        await until(lambda: harness.contacts_rows(
            "SELECT COUNT(*) FROM outbound_message WHERE state != 'sent'")[0][0] == 0
            and harness.contacts_rows(
                "SELECT COUNT(*) FROM network_message WHERE delivered=false")[0][0] == 0,
            180, "every message sent")
    except AssertionError as e:
        raise AssertionError(f"{e}; bridge log:\n{tail(harness.contacts_log_path, 60)}") \
            from None
    await asyncio.sleep(2)  # a late resend would show now
    await friend.disconnect()

    # Through a real client's /messages: each message exactly once, the relays in order.
    in_bot_room = await timeline(me, bot_room)
    assert [len(_answers(in_bot_room, bot, event_id)) for event_id in asked] == \
        [1] * COMMANDS, [e["content"].get("body", "")[:40] for e in in_bot_room]
    assert bodies_from(await timeline(me, portal), ghost) == relays
    # Nothing the bridge said is kept once it is sent.
    assert harness.contacts_rows("SELECT COUNT(*) FROM outbound_message WHERE content != '{}'"
                                 )[0][0] == 0
    print(f"\nRESULT contacts synapse_kill=SIGKILL down={DOWN_SECONDS}s replies={COMMANDS} "
          f"relays={RELAYS} lost=0 doubled=0")
