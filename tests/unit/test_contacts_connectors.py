"""The connector core without a server: addresses, settings, sealed logins, the mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridges.contacts.connectors import load_connectors, store
from bridges.contacts.connectors.base import BadAddress
from bridges.contacts.connectors.credentials import Unreadable, Vault
from bridges.contacts.connectors.messages import incoming_txn, outgoing_id
from bridges.contacts.connectors.portals import escape_address
from bridges.contacts.connectors.xmpp import XmppConnector, normalise_jid
from mercato.config import ConfigError, parse_config
from mercato.db import open_database


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


async def test_a_replayed_message_is_recognised_and_its_text_dropped_once_delivered(
        tmp_path: Path) -> None:
    db = open_database(f"sqlite:{tmp_path / 'c.db'}", store.upgrade_table, "test")
    await db.start()
    try:
        assert await store.record(db, "xmpp", "@a:x", "bob@y", "in", "m1", {"text": "hi"})
        assert not await store.record(db, "xmpp", "@a:x", "bob@y", "in", "m1", {"text": "hi"})
        [row] = await store.pending(db, "xmpp", "@a:x", "in")
        assert row.payload == {"text": "hi"}
        await store.delivered(db, row.seq, "$event")
        assert await store.pending(db, "xmpp", "@a:x", "in") == []
        assert await store.event_for(db, "xmpp", "@a:x", "bob@y", "m1") == "$event"
        assert await db.fetchval("SELECT payload FROM network_message") is None
    finally:
        await db.stop()
