"""XMPP delivery the hard way: the bridge killed mid-message, the user's other devices.

The bridge is killed (exit 137, like SIGKILL: nothing is cleaned up) at a fault point
in bridges/contacts/connectors/messages.py while a friend keeps writing:

- network.before_record: a message was read from the XMPP socket (the server counts it
  as delivered) and not yet written to the bridge's database. After the restart the
  bridge reads the user's server archive (XEP-0313) from the last message it kept.
- network.after_deliver: a message was sent to Matrix and not yet marked as sent. After
  the restart it is found in the room (its txnId marker) instead of being sent again.

Either way every message shows in the portal once, in the order it was written. The
user's phone (another XMPP client of theirs) is seen through carbons and the archive;
the user's typing in a portal reaches the contact; portals are in the user's space.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import command, open_bridge_dm
from tests.integration.test_contacts_xmpp import accounts, bodies_from, ghost_of, with_roster
from tests.integration.xmpp_server import (
    DOMAIN,
    PLAIN_DOMAIN,
    Friend,
    Prosody,
)
from tests.reliability.harness import Harness
from tests.verification_sinks import MailSink, SmsGateway, contacts_settings

# Runs its own Synapse and bridge (on SQLite) whatever the profile: once is enough.
pytestmark = pytest.mark.single_profile


@pytest.fixture(scope="module")
def bridged(tmp_path_factory: pytest.TempPathFactory, prosody: Prosody) -> Iterator[Harness]:
    sms, mail = SmsGateway(token="xmpp-delivery-sms-token").start(), MailSink().start()
    net = Harness(tmp_path_factory.mktemp("xmpp-delivery"), contacts={
        **contacts_settings(sms, mail), "networks": {"xmpp": prosody.connector_settings()}})
    try:
        net.start_synapse()
        net.start_contacts()
        yield net
    finally:
        net.stop_all()
        sms.stop()
        mail.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


async def logged_in(bridged: Harness, prosody: Prosody, http: aiohttp.ClientSession,
                    name: str, contact: str, domain: str = DOMAIN
                    ) -> tuple[MatrixClient, str, str, str, str]:
    """A Mercato user logged in to a fresh XMPP account (on `domain`) with `contact` on its
    roster: (the user, their chat with the bot, their JID, the contact's, the portal)."""
    theirs = (await accounts(prosody, contact))[contact]
    mine = await asyncio.to_thread(prosody.register, f"{name}{uuid.uuid4().hex[:6]}",
                                   f"pw-{uuid.uuid4().hex[:10]}", domain)
    await with_roster(prosody, mine, {theirs: contact.title()})
    me = await new_user(bridged, http, name)
    bot_room = await open_bridge_dm(me, bridged)
    reply = await command(me, bridged, bot_room, f"xmpp login {mine} {prosody.passwords[mine]}")
    assert f"Logged in to XMPP as {mine}" in reply["content"]["body"], reply["content"]["body"]
    portal = await me.wait_for_invite(ghost_of(bridged, theirs), timeout=60)
    await me.join(portal)
    return me, bot_room, mine, theirs, portal


async def crashed(bridged: Harness, timeout: float = 30.0) -> int:
    assert bridged.contacts is not None
    deadline = time.monotonic() + timeout
    while bridged.contacts.poll() is None:
        assert time.monotonic() < deadline, "the bridge did not reach its fault point"
        await asyncio.sleep(0.1)
    return bridged.contacts.returncode


@pytest.mark.parametrize("fault", ["network.before_record=2", "network.after_deliver=2"])
async def test_a_bridge_killed_mid_message_delivers_each_message_once_in_order(
        bridged: Harness, prosody: Prosody, http: aiohttp.ClientSession,
        fault: str) -> None:
    me, bot_room, mine, theirs, portal = await logged_in(bridged, prosody, http, "jon", "kim")
    ghost = ghost_of(bridged, theirs)
    assert bridged.stop_contacts() == 0
    await asyncio.to_thread(bridged.start_contacts, {"MERCATO_FAULTS": fault})

    friend = await Friend(prosody, theirs).connect()
    friend.send(mine, "one")
    await me.wait_for_message(portal, lambda e: e["content"].get("body") == "one", timeout=60)
    for body in ("two", "three", "four", "five"):  # the bridge dies at "two"
        friend.send(mine, body)
    assert await crashed(bridged) == 137
    friend.send(mine, "six, while the bridge is down")
    await asyncio.sleep(1)
    await asyncio.to_thread(bridged.start_contacts)

    await me.wait_for_message(portal, lambda e: e["content"].get("body")
                              == "six, while the bridge is down", timeout=60)
    friend.send(mine, "seven")
    await me.wait_for_message(portal, lambda e: e["content"].get("body") == "seven", timeout=60)
    await asyncio.sleep(3)  # time for anything doubled to show up
    assert bodies_from(await me.messages(portal), ghost) == [
        "one", "two", "three", "four", "five", "six, while the bridge is down", "seven"]
    assert bridged.contacts_rows("SELECT COUNT(*) FROM network_message WHERE delivered=false"
                        " AND user_id=?", me.user_id)[0][0] == 0
    await friend.disconnect()
    reply = await command(me, bridged, bot_room, "xmpp logout")  # the next test's crash is its own
    assert "deleted your password" in reply["content"]["body"]


async def test_a_server_without_an_archive_still_loses_nothing_across_a_restart(
        bridged: Harness, prosody: Prosody, http: aiohttp.ClientSession) -> None:
    me, bot_room, mine, theirs, portal = await logged_in(bridged, prosody, http, "ned", "ola",
                                                         domain=PLAIN_DOMAIN)
    friend = await Friend(prosody, theirs).connect()
    friend.send(mine, "Before the restart")
    await me.wait_for_message(portal, lambda e: e["content"].get("body") == "Before the restart",
                              timeout=60)
    assert bridged.stop_contacts() == 0
    friend.send(mine, "While the bridge is down")  # kept by the server's offline storage
    await asyncio.sleep(1)
    await asyncio.to_thread(bridged.start_contacts)
    await me.wait_for_message(portal, lambda e: e["content"].get("body")
                              == "While the bridge is down", timeout=60)
    await me.send_text(portal, "Answer from Matrix")
    await friend.wait_for(lambda m: m["body"] == "Answer from Matrix")
    await asyncio.sleep(2)
    assert bodies_from(await me.messages(portal), ghost_of(bridged, theirs)) == [
        "Before the restart", "While the bridge is down"]
    assert '"xmpp.no_archive"' in bridged.contacts_log_path.read_text(errors="replace")
    await friend.disconnect()
    await command(me, bridged, bot_room, "xmpp logout")


def _typing_states(friend: Friend) -> list[str]:
    states: list[str] = []
    for state in ("composing", "paused"):
        friend.client.add_event_handler(f"chatstate_{state}",
                                        lambda _m, state=state: states.append(state))
    return states


async def test_the_users_phone_shows_in_the_portal_and_their_typing_reaches_the_contact(
        bridged: Harness, prosody: Prosody, http: aiohttp.ClientSession) -> None:
    me, _bot_room, mine, theirs, portal = await logged_in(bridged, prosody, http, "lia",
                                                           "max")
    ghost = ghost_of(bridged, theirs)

    # The portal is in the user's "Contacts" space.
    me.next_batch = None
    invites = (await me.sync()).get("rooms", {}).get("invite", {})
    spaces = [room for room, data in invites.items() if any(
        e["type"] == "m.room.create" and e["content"].get("type") == "m.space"
        for e in data.get("invite_state", {}).get("events", []))]
    assert len(spaces) == 1, invites.keys()
    await me.join(spaces[0])
    children = [e["state_key"] for e in await me.full_state(spaces[0])
                if e["type"] == "m.space.child" and e["content"].get("via")]
    assert children == [portal]

    # What the user writes from their phone shows as theirs; what the server hands to the
    # phone alone still reaches the portal.
    phone = await Friend(prosody, mine).connect()
    friend = await Friend(prosody, theirs).connect()
    typing = _typing_states(friend)
    phone.send(theirs, "Written on my phone")
    await friend.wait_for(lambda m: m["body"] == "Written on my phone")
    friend.send(f"{mine}/phone", "Only to your phone")
    await me.wait_for_message(portal, lambda e: e["content"].get("body") == "Only to your phone",
                              timeout=60)

    # The same while the bridge is down: it reads them from the archive when it is back.
    assert bridged.stop_contacts() == 0
    phone.send(theirs, "Phone, while the bridge is down")
    await friend.wait_for(lambda m: m["body"] == "Phone, while the bridge is down")
    friend.send(f"{mine}/phone", "To the phone, while the bridge is down")
    await asyncio.sleep(1)
    await asyncio.to_thread(bridged.start_contacts)
    await me.wait_for_message(portal, lambda e: e["content"].get("body")
                              == "To the phone, while the bridge is down", timeout=60)
    await asyncio.sleep(2)
    events = [e for e in await me.messages(portal) if e["type"] == "m.room.message"
              and e["sender"] == ghost]
    assert [(e["content"]["msgtype"], e["content"]["body"]) for e in events] == [
        ("m.notice", "You (from another device): Written on my phone"),
        ("m.text", "Only to your phone"),
        ("m.notice", "You (from another device): Phone, while the bridge is down"),
        ("m.text", "To the phone, while the bridge is down")]

    # The user's typing in the portal reaches the contact, and its end too.
    path = f"/_matrix/client/v3/rooms/{quote(portal)}/typing/{quote(me.user_id)}"
    await me.request("PUT", path, {"typing": True, "timeout": 30000})
    await _until(lambda: "composing" in typing, "composing")
    await me.request("PUT", path, {"typing": False})
    await _until(lambda: typing[-1:] == ["paused"], "paused")
    await phone.disconnect()
    await friend.disconnect()


async def _until(done: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"the contact never saw {what}"
        await asyncio.sleep(0.2)
