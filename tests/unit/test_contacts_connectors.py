"""The connector core without a server: addresses, settings, sealed logins, the mapping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bridges.contacts.connectors import load_connectors, store
from bridges.contacts.connectors.base import BadAddress, IncomingMessage
from bridges.contacts.connectors.commands import roster_text
from bridges.contacts.connectors.credentials import Unreadable, Vault
from bridges.contacts.connectors.messages import incoming_txn, outgoing_id
from bridges.contacts.connectors.portals import RosterOutcome, escape_address
from bridges.contacts.connectors.xmpp import XmppConnector, XmppSettings, normalise_jid
from bridges.contacts.connectors.xmpp.session import XmppSession, _Received
from mercato.config import ConfigError, parse_config, write_config
from mercato.db import open_database
from mercato.net import fetchable


def test_an_address_becomes_a_localpart_reversibly() -> None:
    assert escape_address("bob@xmpp.example") == "bob=40xmpp.example"
    assert escape_address("o=k@x.y") == "o=3dk=40x.y"
    assert escape_address("zoë@x.y") == "zo=c3=ab=40x.y"


def test_jids_are_normalised_and_bad_ones_refused() -> None:
    assert normalise_jid(" Bob@XMPP.Example/phone ") == "bob@xmpp.example"
    assert normalise_jid("xmpp:ann@example.org") == "ann@example.org"
    for bad in ("", "bob", "@example.org", "bob@", "a b@example.org"):
        with pytest.raises(BadAddress):
            normalise_jid(bad)


def test_connector_settings_are_checked_with_the_key_named() -> None:
    with pytest.raises(ConfigError, match=r"contacts\.networks\.xmpp\.servers"):
        XmppConnector({"servers": {"example.org": "no-port"}})
    with pytest.raises(ConfigError, match=r"contacts\.networks\.xmpp\.colour"):
        XmppConnector({"colour": "blue"})
    with pytest.raises(ConfigError, match=r"contacts\.networks\.icq: no such network"):
        load_connectors({"icq": {}})
    assert load_connectors({"xmpp": {"enabled": False}}) == {}
    xmpp = load_connectors({})["xmpp"]
    assert isinstance(xmpp, XmppConnector)
    assert not xmpp.settings.plaintext_allowed("127.0.0.1")  # off unless asked for
    on = XmppConnector({"plaintext_on_loopback": True, "servers": {"x.test": "127.0.0.1:5"}})
    assert on.settings.address_of("x.test") == ("127.0.0.1", 5)
    assert on.settings.plaintext_allowed("127.0.0.1")
    assert not on.settings.plaintext_allowed("203.0.113.5")


def test_the_bridge_refuses_to_start_with_a_bad_connector_section(tmp_path: Path) -> None:
    path = tmp_path / "mercato.yaml"
    write_config(parse_config({"contacts": {"networks": {"xmpp": {"resource": "a b"}}}},
                              base_dir=tmp_path), path)
    result = subprocess.run([sys.executable, "-m", "mercato_ops", "--config", str(path), "run",
                             "contacts"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Error: invalid configuration: contacts.networks.xmpp.resource" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_config_holds_a_credentials_secret_and_network_sections() -> None:
    config = parse_config({"contacts": {"networks": {"xmpp": {"enabled": False}}}})
    assert len(config.contacts.credentials_secret) >= 16
    assert config.contacts.networks == {"xmpp": {"enabled": False}}


def test_a_sealed_login_opens_only_for_its_user_and_secret() -> None:
    vault = Vault("a" * 32)
    sealed = vault.seal("xmpp", "@ann:example.org", {"jid": "ann@x.y", "password": "hunter2"})
    assert "hunter2" not in sealed
    assert vault.open("xmpp", "@ann:example.org", sealed)["password"] == "hunter2"
    with pytest.raises(Unreadable):
        vault.open("xmpp", "@eve:example.org", sealed)
    with pytest.raises(Unreadable):
        Vault("b" * 32).open("xmpp", "@ann:example.org", sealed)


def test_message_ids_are_the_same_every_time() -> None:
    assert outgoing_id("$abc") == outgoing_id("$abc") != outgoing_id("$abd")
    one = incoming_txn("xmpp", "@a:x", "bob@y", "id1")
    assert one == incoming_txn("xmpp", "@a:x", "bob@y", "id1")
    assert one != incoming_txn("xmpp", "@b:x", "bob@y", "id1")


def test_what_the_users_phone_wrote_is_theirs_and_the_bridges_own_echo_is_not() -> None:
    session = XmppSession(XmppSettings(), "ann@x.org", "pw", events=None)  # type: ignore[arg-type]
    client = session._new_client()  # registers the stanza plugins; connects nothing

    def arrived(sender: str, to: str, body: str, stanza_id: str = "") -> IncomingMessage | None:
        stanza = client.make_message(mto=to, mfrom=sender, mbody=body, mtype="chat")
        stanza["id"] = stanza_id
        if not stanza_id:  # slixmpp gives what it makes IDs of its own
            del stanza["id"]
            del stanza["origin_id"]
        return session._incoming(_Received(stanza, "archive-7"))

    from_bob = arrived("bob@y.org/laptop", "ann@x.org", "hi", "b1")
    assert from_bob is not None and (from_bob.contact, from_bob.from_me) == ("bob@y.org", False)
    assert (from_bob.message_id, from_bob.position) == ("b1", "archive-7")
    from_phone = arrived("ann@x.org/phone", "bob@y.org", "on my way", "p1")
    assert from_phone is not None and (from_phone.contact, from_phone.from_me) == ("bob@y.org",
                                                                                 True)
    assert arrived("ann@x.org/mercato", "bob@y.org", "sent for Matrix", "mercato-1") is None
    assert arrived("ann@x.org/phone", "ann@x.org", "a note to self") is None
    # Without an ID of the sender's, the archive's: the same live and read from the archive.
    no_id = arrived("bob@y.org/laptop", "ann@x.org", "hi again")
    assert no_id is not None and no_id.message_id == "archive-7"


async def test_a_file_link_must_be_public_http() -> None:
    assert await fetchable("http://93.184.215.14/cat.png")
    assert await fetchable("https://[2606:4700::1]/cat.png")
    for link in ("http://127.0.0.1:8008/_synapse/admin/v1/users", "http://10.1.2.3/x",
                 "http://[::1]/x", "http://169.254.169.254/latest/meta-data", "ftp://x.org/f",
                 "file:///etc/passwd", "http:///nohost", "not a link"):
        assert not await fetchable(link), link
    assert await fetchable("http://127.0.0.1:8080/x", private_allowed=True)
    assert not await fetchable("file:///etc/passwd", private_allowed=True)


async def test_the_mapping_keeps_each_message_once_on_both_engines(database_url: str) -> None:
    db = open_database(database_url, store.upgrade_table, "test")
    await db.start()
    try:
        # From the network: a replay is recognised; the text goes once it is delivered.
        assert await store.record(db, "xmpp", "@a:x", "bob@y", "in", "m1", {"text": "hi"})
        assert not await store.record(db, "xmpp", "@a:x", "bob@y", "in", "m1", {"text": "hi"})
        [row] = await store.pending(db, "xmpp", "@a:x", "in")
        assert row.payload == {"text": "hi"}
        await store.delivered(db, row.seq, "$in")
        assert await store.pending(db, "xmpp", "@a:x", "in") == []
        assert await store.event_for(db, "xmpp", "@a:x", "bob@y", "m1") == "$in"
        # From Matrix: keyed by event ID, with the network ID chosen for it.
        out = outgoing_id("$out")
        assert await store.record(db, "xmpp", "@a:x", "bob@y", "out", out, {"text": "yo"},
                                  event_id="$out")
        assert not await store.record(db, "xmpp", "@a:x", "bob@y", "out", out, {"text": "yo"},
                                      event_id="$out")
        assert await store.remote_for(db, "$out") == out
        [sent] = await store.pending(db, "xmpp", "@a:x", "out")
        await store.delivered(db, sent.seq)
        assert await db.fetchval("SELECT COUNT(*) FROM network_message"
                                 " WHERE payload IS NOT NULL") == 0
        # A login and a portal; logging out drops what was still waiting to go out.
        await store.save_login(db, store.Login("xmpp", "@a:x", "a@y", "sealed", "!dm:x"))
        await store.add_portal(db, store.Portal("xmpp", "@a:x", "bob@y", "!p:x", "@g:x", "Bob",
                                                "digest", None))
        assert (await store.portal_by_room(db, "!p:x")).name == "Bob"  # type: ignore[union-attr]
        assert [p.room_id for p in await store.unmoved_portals(db, "", 10)] == ["!p:x"]
        await store.record(db, "xmpp", "@a:x", "bob@y", "out", "late", {"text": "x"},
                           event_id="$late")
        assert await store.delete_login(db, "xmpp", "@a:x")
        assert await store.login(db, "xmpp", "@a:x") is None
        assert await store.pending(db, "xmpp", "@a:x", "out") == []
        await store.set_moved(db, "!p:x", "@bob:x")
        assert await store.unmoved_portals(db, "", 10) == []
    finally:
        await db.stop()


async def test_a_logins_history_position_and_portals_in_spaces_on_both_engines(
        database_url: str) -> None:
    db = open_database(database_url, store.upgrade_table, "test")
    await db.start()
    try:
        # Never read: None; "" is "before the first message"; a logout forgets it.
        assert await store.position(db, "xmpp", "@a:x") is None
        await store.set_position(db, "xmpp", "@a:x", "")
        assert await store.position(db, "xmpp", "@a:x") == ""
        await store.set_position(db, "xmpp", "@a:x", "archive-2")
        assert await store.position(db, "xmpp", "@a:x") == "archive-2"
        await store.save_login(db, store.Login("xmpp", "@a:x", "a@y", "sealed", "!dm:x"))
        await store.delete_login(db, "xmpp", "@a:x")
        assert await store.position(db, "xmpp", "@a:x") is None
        # What the bridge sent for Matrix is told apart from what the user's phone sent.
        await store.record(db, "xmpp", "@a:x", "bob@y", "out", "mercato-1", {"text": "x"},
                           event_id="$1")
        assert await store.sent_by_bridge(db, "xmpp", "@a:x", "bob@y", "mercato-1")
        assert not await store.sent_by_bridge(db, "xmpp", "@a:x", "bob@y", "phone-1")
        # A portal waits to be put in the user's space until that is recorded.
        await store.add_portal(db, store.Portal("xmpp", "@a:x", "bob@y", "!p:x", "@g:x", "Bob",
                                                None, None))
        assert await store.portals_not_in_space(db) == [("@a:x", "!p:x")]
        await store.mark_portal_in_space(db, "!p:x")
        assert await store.portals_not_in_space(db) == []
    finally:
        await db.stop()


def test_the_roster_reply_names_who_is_here_and_stays_short() -> None:
    assert "roster is empty" in roster_text("XMPP", RosterOutcome())
    text = roster_text("XMPP", RosterOutcome(
        on_mercato=[("Carol", "@carol:x", "!chat:x"), ("Dan", "@dan:x", None)],
        portals=[f"Friend {i}" for i in range(30)], later=5))
    assert "37 contact(s)" in text
    assert "Carol is on Mercato: @carol:x" in text and "I opened a chat between you" in text
    assert "https://matrix.to/#/@dan:x" in text
    assert "Friend 19 and 10 more" in text and "Friend 20" not in text
    assert "5 more get a chat when they write to you" in text
    refused = roster_text("XMPP", RosterOutcome(portals=["A"], refused="too many"))
    assert "I did not look them up on Mercato: too many." in refused
