"""The XMPP connector against a real Prosody and a real Synapse.

A Mercato user logs in to their XMPP account through the contacts bot, their roster
comes over (a contact already on Mercato is offered as a Matrix DM, the others get a
portal), messages go both ways with a friend who has not moved (driven by slixmpp),
and a restart of the bridge in the middle of the conversation loses and doubles
nothing. The bridge runs as its own process beside Synapse so it can be restarted.
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

from bridges.contacts.connectors.portals import escape_address
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import (
    become_findable,
    command,
    open_bridge_dm,
    upload,
)
from tests.integration.xmpp_server import Friend, Prosody, files_served
from tests.reliability.harness import Harness
from tests.verification_sinks import MailSink, SmsGateway, contacts_settings

# Runs its own Synapse and bridge (on SQLite) whatever the profile: once is enough.
pytestmark = pytest.mark.single_profile


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[SmsGateway, MailSink]]:
    sms, mail = SmsGateway(token="xmpp-test-sms-token").start(), MailSink().start()
    try:
        yield sms, mail
    finally:
        sms.stop()
        mail.stop()


@pytest.fixture(scope="module")
def bridged(tmp_path_factory: pytest.TempPathFactory, prosody: Prosody,
            sinks: tuple[SmsGateway, MailSink]) -> Iterator[Harness]:
    net = Harness(tmp_path_factory.mktemp("xmpp-network"), contacts={
        **contacts_settings(*sinks), "networks": {"xmpp": prosody.connector_settings()}})
    try:
        net.start_synapse()
        net.start_contacts()
        yield net
    finally:
        net.stop_all()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


def ghost_of(net: Harness, jid: str) -> str:
    return net.config.user_id(f"{net.config.contacts.user_prefix}xmpp_{escape_address(jid)}")


async def accounts(prosody: Prosody, *names: str) -> dict[str, str]:
    """Fresh XMPP accounts (name → JID); passwords are in prosody.passwords."""
    suffix = uuid.uuid4().hex[:6]
    return {name: await asyncio.to_thread(prosody.register, f"{name}{suffix}",
                                          f"pw-{name}-{uuid.uuid4().hex[:10]}")
            for name in names}


async def with_roster(prosody: Prosody, jid: str, roster: dict[str, str]) -> None:
    """The roster the user already has on XMPP, made from their phone before they move."""
    phone = await Friend(prosody, jid).connect()
    for contact, name in roster.items():
        await phone.add_to_roster(contact, name)
    await phone.disconnect()


async def download(client: MatrixClient, mxc: str) -> bytes:
    server, media_id = mxc.removeprefix("mxc://").split("/", 1)
    async with client.session.get(
            f"{client.homeserver}/_matrix/client/v1/media/download/{server}/{media_id}",
            headers={"Authorization": f"Bearer {client.token}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.read()


async def invited_to(client: MatrixClient, room_id: str, timeout: float = 60.0) -> None:
    """Wait until the client's invitations include the room."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.next_batch = None  # every current invitation, not only new ones
        if room_id in (await client.sync()).get("rooms", {}).get("invite", {}):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{client.user_id} was not invited to {room_id} within {timeout} s")


async def until(seen: Any, client: MatrixClient, timeout: float = 30.0) -> None:
    """Sync until a sync response satisfies `seen`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if seen(await client.sync(timeout_ms=1000)):
            return
    raise AssertionError(f"not seen by {client.user_id} within {timeout} s")


def bodies_from(events: list[dict[str, Any]], sender: str) -> list[str]:
    return [e["content"].get("body", "") for e in events
            if e["type"] == "m.room.message" and e["sender"] == sender]


async def test_a_roster_comes_over_and_a_conversation_survives_a_bridge_restart(
        bridged: Harness, prosody: Prosody, sinks: tuple[SmsGateway, MailSink],
        http: aiohttp.ClientSession) -> None:
    jids = await accounts(prosody, "alice", "bob", "carol", "dave")
    alice, bob, carol, dave = (jids[n] for n in ("alice", "bob", "carol", "dave"))
    await with_roster(prosody, alice, {bob: "Bob Builder", carol: "Carol Q", dave: "Dave"})

    # Carol is on Mercato already and findable by her address (which is her JID).
    carol_user = await new_user(bridged, http, "carol")
    carol_room = await open_bridge_dm(carol_user, bridged)
    verified = await become_findable(carol_user, bridged, carol_room, sinks,
                                     f"findable email {carol}", carol)
    assert "can now find you" in verified["content"]["body"], verified["content"]["body"]

    # The user logs in through the bot; the message with the password leaves the chat.
    me = await new_user(bridged, http, "mover")
    bot_room = await open_bridge_dm(me, bridged)
    password = prosody.passwords[alice]
    reply = await command(me, bridged, bot_room,
                          f"xmpp login {alice} {password}")
    body = reply["content"]["body"]
    assert f"Logged in to XMPP as {alice}" in body, body
    assert "3 contact(s)" in body
    assert carol_user.user_id in body and f"https://matrix.to/#/{carol_user.user_id}" in body
    assert "I opened a chat between you" in body
    assert "Bob Builder" in body and "Dave" in body
    assert password not in body
    asked = reply["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
    await me.wait_for_message(bot_room, lambda e: e["event_id"] == asked
                              and "redacted_because" in e.get("unsigned", {}))

    # Bob and Dave get portals (their ghosts invite the user); Carol is offered as a DM.
    portal = await me.wait_for_invite(ghost_of(bridged, bob), timeout=60)
    await me.join(portal)
    me.next_batch = None  # the invites came in one sync: look at all of them again
    await me.wait_for_invite(ghost_of(bridged, dave), timeout=60)
    bot = bridged.config.user_id(bridged.config.contacts.bot_localpart)
    native = await carol_user.wait_for_invite(bot, timeout=60)
    await invited_to(me, native)  # a chat of the two (the user's space is another invite)
    member = await me.state(portal, "m.room.member", ghost_of(bridged, bob))
    assert member["displayname"] == "Bob Builder (XMPP)"
    portals = bridged.contacts_rows("SELECT remote_id FROM network_portal WHERE user_id=?",
                                    me.user_id)
    assert sorted(row[0] for row in portals) == sorted([bob, dave])

    # Messages both ways, with replies.
    friend = await Friend(prosody, bob).connect()
    hello_id = friend.send(alice, "Hello from XMPP")
    hello = await me.wait_for_message(portal, lambda e: e["content"].get("body")
                                      == "Hello from XMPP", timeout=60)
    assert hello["sender"] == ghost_of(bridged, bob)
    await me.send_text(portal, "Hello from Matrix")
    got = await friend.wait_for(lambda m: m["body"] == "Hello from Matrix")
    assert got["from"].bare == alice
    await me.send(portal, {"msgtype": "m.text", "body": "> <x> Hello from XMPP\n\nNice to hear",
                           "m.relates_to": {"m.in_reply_to": {"event_id": hello["event_id"]}}})
    answer = await friend.wait_for(lambda m: m["body"] == "Nice to hear")
    assert answer["reply"]["id"] == hello_id
    friend.send(alice, "Replying on XMPP", reply_to=str(got["id"]))
    replied = await me.wait_for_message(portal, lambda e: e["content"].get("body")
                                        == "Replying on XMPP", timeout=60)
    mine = [e for e in await me.messages(portal) if e["sender"] == me.user_id
            and e["content"].get("body") == "Hello from Matrix"][0]
    assert replied["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == mine["event_id"]

    # A photo sent from XMPP as a link (as XMPP clients' uploads are) arrives as an image.
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    async with files_served({"/up/cat.png": (picture, "image/png")}) as base:
        friend.send(alice, f"{base}/up/cat.png", oob_url=f"{base}/up/cat.png")
        image = await me.wait_for_message(portal, lambda e: e["content"].get("msgtype")
                                          == "m.image", timeout=60)
    assert image["content"]["body"] == "cat.png"
    assert await download(me, image["content"]["url"]) == picture

    # A photo from Matrix goes through the XMPP server's upload service (XEP-0363).
    snapshot = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256))) * 4
    await me.send(portal, {"msgtype": "m.image", "body": "snap.png",
                           "url": await upload(me, snapshot, "image/png"),
                           "info": {"mimetype": "image/png", "size": len(snapshot)}})
    photo = await friend.wait_for(lambda m: m.xml.find("{jabber:x:oob}x") is not None)
    link = str(photo["oob"]["url"])
    assert photo["body"] == link and link.endswith("/snap.png")
    async with http.get(link) as resp:
        assert await resp.read() == snapshot

    # The bridge goes down mid-conversation; both sides keep writing.
    assert bridged.stop_contacts() == 0
    friend.send(alice, "Sent while the bridge was down 1")
    friend.send(alice, "Sent while the bridge was down 2")
    await me.send_text(portal, "Matrix message while the bridge was down")
    await asyncio.sleep(2)
    bridged.start_contacts()

    await me.wait_for_message(portal, lambda e: e["content"].get("body")
                              == "Sent while the bridge was down 2", timeout=90)
    await friend.wait_for(lambda m: m["body"] == "Matrix message while the bridge was down",
                          timeout=90)
    friend.send(alice, "After the restart")
    await me.wait_for_message(portal, lambda e: e["content"].get("body") == "After the restart",
                              timeout=60)
    await asyncio.sleep(5)  # time for anything doubled to show up

    from_bob = bodies_from(await me.messages(portal), ghost_of(bridged, bob))
    assert from_bob == ["Hello from XMPP", "Replying on XMPP", "cat.png",
                        "Sent while the bridge was down 1",
                        "Sent while the bridge was down 2", "After the restart"], from_bob
    assert friend.bodies() == ["Hello from Matrix", "Nice to hear", link,
                               "Matrix message while the bridge was down"], friend.bodies()
    await friend.disconnect()

    # The password is kept encrypted only; no message text stays once delivered.
    stored = b"".join(path.read_bytes() for path in bridged.config.data_path.glob("contacts.db*"))
    assert password.encode() not in stored
    assert password not in bridged.contacts_log_path.read_text(errors="replace")
    assert bridged.contacts_rows(
        "SELECT COUNT(*) FROM network_message WHERE payload IS NOT NULL")[0][0] == 0


async def test_a_contact_who_joins_later_is_pointed_to_a_matrix_dm(
        bridged: Harness, prosody: Prosody, sinks: tuple[SmsGateway, MailSink],
        http: aiohttp.ClientSession) -> None:
    jids = await accounts(prosody, "ann", "erin")
    ann, erin = jids["ann"], jids["erin"]
    await with_roster(prosody, ann, {erin: "Erin"})
    me = await new_user(bridged, http, "ann")
    bot_room = await open_bridge_dm(me, bridged)
    reply = await command(me, bridged, bot_room,
                          f"xmpp login {ann} {prosody.passwords[ann]}")
    assert "I opened a chat" in reply["content"]["body"], reply["content"]["body"]
    portal = await me.wait_for_invite(ghost_of(bridged, erin), timeout=60)
    await me.join(portal)

    # Erin moves to Mercato and becomes findable by her address.
    erin_user = await new_user(bridged, http, "erin")
    erin_room = await open_bridge_dm(erin_user, bridged)
    await become_findable(erin_user, bridged, erin_room, sinks,
                          f"findable email {erin}", erin)

    # The portal says where the conversation continues: a Matrix chat opened for both.
    told = await me.wait_for_message(portal, lambda e: "is on Mercato now" in
                                     e["content"].get("body", ""), timeout=60)
    assert erin_user.user_id in told["content"]["body"]
    bot = bridged.config.user_id(bridged.config.contacts.bot_localpart)
    native = await erin_user.wait_for_invite(bot, timeout=60)
    assert f"https://matrix.to/#/{native}?via=" in told["content"]["body"]
    await invited_to(me, native)
    other_side = await erin_user.wait_for_message(
        erin_room, lambda e: e["sender"] == bot and me.user_id in e["content"].get("body", "")
        and "is on Mercato too" in e["content"].get("body", ""), timeout=60)
    assert native in other_side["content"]["body"]
    await erin_user.join(native)
    await erin_user.send_text(native, "Hi, it is me, on Mercato now")
    await me.join(native)
    await me.wait_for_message(native, lambda e: e["content"].get("body")
                              == "Hi, it is me, on Mercato now")


async def test_a_refused_login_keeps_nothing_and_logout_forgets_the_password(
        bridged: Harness, prosody: Prosody, http: aiohttp.ClientSession) -> None:
    jids = await accounts(prosody, "gus")
    gus = jids["gus"]
    me = await new_user(bridged, http, "gus")
    room = await open_bridge_dm(me, bridged)

    reply = await command(me, bridged, room, f"xmpp login {gus} not-the-password")
    assert "could not log you in" in reply["content"]["body"]
    assert "refused" in reply["content"]["body"]
    reply = await command(me, bridged, room, "xmpp login not-an-address pw")
    assert "cannot use that address" in reply["content"]["body"]
    assert bridged.contacts_rows("SELECT COUNT(*) FROM network_login WHERE user_id=?",
                        me.user_id)[0][0] == 0

    reply = await command(me, bridged, room,
                          f"xmpp login {gus} {prosody.passwords[gus]}")
    assert "roster is empty" in reply["content"]["body"], reply["content"]["body"]
    reply = await command(me, bridged, room, "xmpp status")
    assert f"logged in to XMPP as {gus}; connected" in reply["content"]["body"]

    # The password changes on the XMPP side; after a restart the bridge says so, and a
    # new `xmpp login` replaces the stored one.
    await asyncio.to_thread(prosody.change_password, gus, f"new-{uuid.uuid4().hex[:10]}")
    assert bridged.stop_contacts() == 0
    await asyncio.to_thread(bridged.start_contacts)
    bot = bridged.config.user_id(bridged.config.contacts.bot_localpart)
    told = await me.wait_for_message(room, lambda e: e["sender"] == bot and "could not log "
                                     "you back in" in e["content"].get("body", ""), timeout=60)
    assert "refused" in told["content"]["body"]
    reply = await command(me, bridged, room, "xmpp status")
    assert "connecting" in reply["content"]["body"], reply["content"]["body"]
    reply = await command(me, bridged, room,
                          f"xmpp login {gus} {prosody.passwords[gus]}")
    assert f"Logged in to XMPP as {gus}" in reply["content"]["body"], reply["content"]["body"]
    reply = await command(me, bridged, room, "xmpp status")
    assert "connected" in reply["content"]["body"]
    reply = await command(me, bridged, room, "xmpp logout")
    assert "deleted your password" in reply["content"]["body"]
    assert bridged.contacts_rows("SELECT COUNT(*) FROM network_login WHERE user_id=?",
                        me.user_id)[0][0] == 0
    reply = await command(me, bridged, room, "xmpp status")
    assert "not logged in" in reply["content"]["body"]


async def test_a_restart_of_the_xmpp_server_loses_nothing(
        bridged: Harness, prosody: Prosody, http: aiohttp.ClientSession) -> None:
    jids = await accounts(prosody, "hal", "ivy")
    hal, ivy = jids["hal"], jids["ivy"]
    await with_roster(prosody, hal, {ivy: "Ivy"})
    me = await new_user(bridged, http, "hal")
    room = await open_bridge_dm(me, bridged)
    await command(me, bridged, room, f"xmpp login {hal} {prosody.passwords[hal]}")
    portal = await me.wait_for_invite(ghost_of(bridged, ivy), timeout=60)
    await me.join(portal)

    # The XMPP server goes away; what the user writes meanwhile waits in the bridge.
    await asyncio.to_thread(prosody.stop)
    await me.send_text(portal, "Written while the XMPP server was down")
    reply = await command(me, bridged, room, "xmpp status")
    assert "connecting" in reply["content"]["body"], reply["content"]["body"]
    await asyncio.to_thread(prosody.start)

    # The bridge reconnects by itself and sends it; Ivy gets it once, and can answer.
    ivy_phone = await Friend(prosody, ivy).connect()
    await ivy_phone.wait_for(lambda m: m["body"] == "Written while the XMPP server was down",
                             timeout=120)
    ivy_phone.send(hal, "Got it")
    await me.wait_for_message(portal, lambda e: e["content"].get("body") == "Got it", timeout=60)
    await asyncio.sleep(3)
    assert ivy_phone.bodies() == ["Written while the XMPP server was down"]

    # Ivy typing shows in Matrix.
    ghost = ghost_of(bridged, ivy)
    ivy_phone.typing(hal)
    await until(lambda sync: any(
        ghost in event["content"].get("user_ids", [])
        for event in sync.get("rooms", {}).get("join", {}).get(portal, {})
        .get("ephemeral", {}).get("events", []) if event["type"] == "m.typing"), me)

    # The user leaves the chat; Ivy's next message invites them back to it.
    await me.leave(portal)
    await me.sync()  # from here on, a sync shows only what is new
    await asyncio.sleep(2)  # Ivy writes later (the bridge hears of the leave meanwhile)
    ivy_phone.send(hal, "Are you still there?")
    assert await me.wait_for_invite(ghost_of(bridged, ivy), timeout=60) == portal
    await me.join(portal)
    await me.wait_for_message(portal, lambda e: e["content"].get("body")
                              == "Are you still there?", timeout=60)

    # Ivy follows Hal's presence: it shows what Hal's Matrix presence is.
    ivy_phone.client.send_presence_subscription(pto=hal)
    await ivy_phone.wait_presence(hal, "")
    for state, show in (("unavailable", "away"), ("online", "")):
        await me.request("PUT", f"/_matrix/client/v3/presence/{quote(me.user_id)}/status",
                         {"presence": state})
        await ivy_phone.wait_presence(hal, show)
    await ivy_phone.disconnect()
