"""The core outbox on a real database (SQLite and PostgreSQL) and a homeserver stand-in:
recorded once, sent in each room's order, retried after a failure, parked after the last
try, held DMs released by a join, and the commerce tables upgraded without losing a DM."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import pytest
from mautrix.errors import MatrixConnectionError, MNotFound
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from appservices.commerce.db.upgrade import upgrade_table
from mercato.db import Database, UpgradeTable, open_database
from mercato.matrix import outbox as outbox_module
from mercato.matrix.outbox import Message, MessageParked, Outbox, Outgoing
from mercato.matrix.outbox_hooks import Drop, Failure, Hold
from mercato.matrix.sending import MARKER

SHOP = "@shop_demo:localhost"


class Room:
    """What the homeserver holds: the events each room got, and which sends fail."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.failing: dict[str, int] = {}  # room → how many sends still fail
        self.lost_answers: set[str] = set()  # txnIds whose send is stored, answer lost
        self.members: dict[tuple[str, str], str] = {}  # (room, user) → membership
        self.member_reads = 0


class Api:
    def __init__(self, rooms: Room) -> None:
        self.rooms = rooms

    async def request(self, method: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        room_id = unquote(str(path).split("/rooms/")[1].split("/")[0])
        if "/state/m.room.member/" in str(path):
            self.rooms.member_reads += 1
            user_id = unquote(str(path).rsplit("/", 1)[1])
            if (room_id, user_id) not in self.rooms.members:
                raise MNotFound(404, "Event not found.")
            return {"membership": self.rooms.members[room_id, user_id]}
        return {"chunk": list(reversed(self.rooms.events.get(room_id, [])))}


class Intent:
    def __init__(self, rooms: Room, mxid: str) -> None:
        self.rooms = rooms
        self.mxid = mxid
        self.api = Api(rooms)

    async def send_message_event(self, room_id: str, event_type: Any, content: dict[str, Any],
                                 txn_id: str, retry_count: int = 0,
                                 timestamp: int | None = None) -> str:
        if self.rooms.failing.get(room_id, 0) > 0:
            self.rooms.failing[room_id] -= 1
            raise MatrixConnectionError("connection reset")
        events = self.rooms.events.setdefault(room_id, [])
        event_id = f"${len(events) + 1}{room_id}"
        events.append({"event_id": event_id, "sender": self.mxid, "content": content,
                       "origin_server_ts": timestamp})
        if txn_id in self.rooms.lost_answers:
            self.rooms.lost_answers.discard(txn_id)
            raise MatrixConnectionError("answer lost")
        return event_id


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
def rooms() -> Room:
    return Room()


@pytest.fixture
def outbox(db: Database, rooms: Room) -> Outbox:
    return Outbox(db, "test", lambda mxid: Intent(rooms, mxid))  # type: ignore[arg-type]


def _text(n: int) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": f"message {n}"}


def _bodies(rooms: Room, room_id: str) -> list[str]:
    return [e["content"]["body"] for e in rooms.events.get(room_id, [])]


async def _drain(outbox: Outbox) -> None:
    """Passes until no room has a due message."""
    for _ in range(50):
        await outbox.worker.run_pass()
        await outbox.worker.idle()
        if not await outbox._due_rooms():
            return


async def _all_due(db: Database) -> None:
    await db.execute("UPDATE outbound_message SET next_attempt_at=0 WHERE state='pending'")


def _counted(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("mercato_outbox_messages_total",
                                     {"component": "test", "kind": kind,
                                      "outcome": outcome}) or 0.0


async def test_a_message_recorded_twice_is_sent_once_with_its_txn_id(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    message = Message(txn_id="t.1", room_id="!a:localhost", sender=SHOP, content=_text(1),
                      kind="direct")
    await outbox.record(message)
    await outbox.record(message)
    await _drain(outbox)
    assert _bodies(rooms, "!a:localhost") == ["message 1"]
    assert rooms.events["!a:localhost"][0]["content"][MARKER] == "t.1"
    assert await outbox.state_of("t.1") == ("sent", rooms.events["!a:localhost"][0]["event_id"])


async def test_a_failed_send_holds_its_room_only_and_is_retried_in_order(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    rooms.failing["!a:localhost"] = 1
    for n in range(3):
        await outbox.record(Message(txn_id=f"a.{n}", room_id="!a:localhost", sender=SHOP,
                                    content=_text(n), kind="support_relay"))
    await outbox.record(Message(txn_id="b.0", room_id="!b:localhost", sender=SHOP,
                                content=_text(9), kind="support_relay"))
    before = _counted("support_relay", "retry")
    with capture_logs() as logs:
        await _drain(outbox)
    assert _bodies(rooms, "!a:localhost") == []  # waiting for its retry, the others behind it
    assert _bodies(rooms, "!b:localhost") == ["message 9"]
    assert [e["event"] for e in logs if e["event"] == "outbox.send_failed"]
    assert _counted("support_relay", "retry") == before + 1
    await _all_due(db)
    await _drain(outbox)
    assert _bodies(rooms, "!a:localhost") == ["message 0", "message 1", "message 2"]


async def test_a_send_whose_answer_was_lost_is_adopted_not_repeated(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    rooms.lost_answers.add("a.0")  # stored by the homeserver, the answer never came
    await outbox.record(Message(txn_id="a.0", room_id="!a:localhost", sender=SHOP,
                                content=_text(0), kind="coupon_code"))
    await _drain(outbox)
    await _all_due(db)
    with capture_logs() as logs:
        await _drain(outbox)
    assert _bodies(rooms, "!a:localhost") == ["message 0"]
    assert any(e["event"] == "send.adopted" for e in logs)
    assert (await outbox.state_of("a.0") or ("", ""))[0] == "sent"


async def test_a_message_is_parked_after_its_last_try_and_the_room_goes_on(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    rooms.failing["!a:localhost"] = 1
    await outbox.record(Message(txn_id="a.0", room_id="!a:localhost", sender=SHOP,
                                content=_text(0), kind="welcome"))
    await outbox.record(Message(txn_id="a.1", room_id="!a:localhost", sender=SHOP,
                                content=_text(1), kind="welcome"))
    await db.execute("UPDATE outbound_message SET attempts=$1 WHERE txn_id='a.0'",
                     outbox_module.BACKOFF.max_attempts - 1)
    before = _counted("welcome", "parked")
    with capture_logs() as logs:
        await _drain(outbox)
    parked = [e for e in logs if e["event"] == "outbox.parked"]
    assert parked and parked[0]["txn_id"] == "a.0" and parked[0]["log_level"] == "error"
    assert _counted("welcome", "parked") == before + 1
    assert _bodies(rooms, "!a:localhost") == ["message 1"]
    with pytest.raises(MessageParked, match="connection reset"):
        await outbox.wait_sent("a.0", 1)


async def test_a_held_dm_waits_for_the_join_and_does_not_hold_other_rooms(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    await outbox.record(Message(txn_id="dm.0", room_id="!dm:localhost", sender=SHOP,
                                content=_text(0), kind="coupon_code", subject="CODE",
                                held_for="@buyer:localhost"))
    await outbox.record(Message(txn_id="c.0", room_id="!c:localhost", sender=SHOP,
                                content=_text(1), kind="direct"))
    await _drain(outbox)
    assert _bodies(rooms, "!dm:localhost") == [] and _bodies(rooms, "!c:localhost")
    assert await outbox.release("!dm:localhost", "@someone-else:localhost") == 0
    assert await outbox.release("!dm:localhost", "@buyer:localhost") == 1
    await _drain(outbox)
    assert _bodies(rooms, "!dm:localhost") == ["message 0"]


async def test_a_dm_held_while_the_buyer_joined_goes_out_and_each_hold_is_checked_once(
        db: Database, rooms: Room, outbox: Outbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The buyer's join was handled (nothing held yet) while the message was still being
    recorded: the check of new holds finds them in the room and lets it go; a buyer who
    has not joined stays held, and is asked about once, not at every pass."""
    monkeypatch.setattr(outbox_module, "HOLD_CHECK_AFTER_MS", 0)
    rooms.members["!dm:localhost", "@buyer:localhost"] = "join"
    rooms.members["!other:localhost", "@other:localhost"] = "invite"
    for n, (room, user) in enumerate([("!dm:localhost", "@buyer:localhost"),
                                      ("!other:localhost", "@other:localhost"),
                                      ("!gone:localhost", "@gone:localhost")]):
        await outbox.record(Message(txn_id=f"h.{n}", room_id=room, sender=SHOP,
                                    content=_text(n), kind="direct", held_for=user))
    await _drain(outbox)
    await _drain(outbox)
    assert _bodies(rooms, "!dm:localhost") == ["message 0"]
    assert _bodies(rooms, "!other:localhost") == [] == _bodies(rooms, "!gone:localhost")
    assert rooms.member_reads == 3
    assert await outbox.release("!other:localhost", "@other:localhost") == 1


async def test_send_waits_for_the_event_id_and_the_hook_sees_it(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    seen: list[tuple[str | None, str]] = []

    async def hook(message: Outgoing, event_id: str) -> None:
        seen.append((message.subject, event_id))

    outbox.on_sent("card_share", hook)
    outbox.start()
    try:
        event_id = await outbox.send(Message(
            txn_id="card.1", room_id="!a:localhost", sender=SHOP, content=_text(1),
            kind="card_share", subject="mug"), timeout=10)
    finally:
        await outbox.stop()
    assert event_id == rooms.events["!a:localhost"][0]["event_id"]
    assert seen == [("mug", event_id)]


async def test_a_bridged_message_keeps_its_network_time_and_a_forgetful_outbox_its_words(
        db: Database, rooms: Room) -> None:
    # The contacts bridge keeps nothing of what it said once it is sent.
    outbox = Outbox(db, "test", lambda mxid: Intent(rooms, mxid),  # type: ignore[arg-type]
                    forget_sent=True)
    await outbox.record(Message(txn_id="in.1", room_id="!p:localhost", sender=SHOP,
                                content=_text(1), kind="relayed", subject="7",
                                timestamp=1_700_000_000_000))
    await _drain(outbox)
    [event] = rooms.events["!p:localhost"]
    assert event["origin_server_ts"] == 1_700_000_000_000
    assert event["content"] == {**_text(1), MARKER: "in.1"}  # the time is not in the message
    row = await db.fetchrow("SELECT content, subject FROM outbound_message WHERE txn_id='in.1'")
    assert (json.loads(row["content"]), row["subject"]) == ({}, None)


async def test_a_forgetful_outbox_keeps_no_words_of_a_parked_message(
        db: Database, rooms: Room) -> None:
    outbox = Outbox(db, "test", lambda mxid: Intent(rooms, mxid),  # type: ignore[arg-type]
                    forget_sent=True)
    rooms.failing["!p:localhost"] = 1
    await outbox.record(Message(txn_id="in.2", room_id="!p:localhost", sender=SHOP,
                                content=_text(2), kind="relayed", subject="8"))
    await db.execute("UPDATE outbound_message SET attempts=$1 WHERE txn_id='in.2'",
                     outbox_module.BACKOFF.max_attempts - 1)
    await _drain(outbox)
    row = await db.fetchrow("SELECT state, content, subject, last_error FROM outbound_message"
                            " WHERE txn_id='in.2'")
    assert (row["state"], json.loads(row["content"]), row["subject"]) == ("failed", {}, None)
    assert row["last_error"]


async def test_send_answers_none_when_the_homeserver_is_too_slow(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    # No worker running: the message stays recorded, to be sent later.
    assert await outbox.send(Message(txn_id="slow.1", room_id="!a:localhost", sender=SHOP,
                                     content=_text(1), kind="card_share"), timeout=0.2) is None
    assert await outbox.state_of("slow.1") == ("pending", None)


async def test_dms_waiting_for_a_join_survive_the_upgrade(database_url: str) -> None:
    before = UpgradeTable(version_table_name="commerce_version", database_name="commerce")
    before.upgrades = upgrade_table.upgrades[:8]
    old = open_database(database_url, before, "commerce")
    await old.start()
    try:
        for n, txn_id in enumerate(["mercato.coupon.ABCDEFGH23", "mercato.coupon.refused.$r1",
                                    "mercato.alert.demo.mug.@b:localhost.5"]):
            await old.execute(
                "INSERT INTO pending_direct (txn_id, room_id, user_id, shop_mxid, content,"
                " created_at) VALUES ($1, '!dm:localhost', '@b:localhost', $2, $3, $4)",
                txn_id, SHOP, json.dumps(_text(n)), 1000 + n)
    finally:
        await old.stop()
    db = open_database(database_url, upgrade_table, "commerce")
    await db.start()
    try:
        rows = await db.fetch("SELECT txn_id, kind, subject, held_for, sender, content, state"
                              " FROM outbound_message ORDER BY id")
        assert [(r["txn_id"], r["kind"], r["subject"]) for r in rows] == [
            ("mercato.coupon.ABCDEFGH23", "coupon_code", "ABCDEFGH23"),
            ("mercato.coupon.refused.$r1", "direct", None),
            ("mercato.alert.demo.mug.@b:localhost.5", "direct", None)]
        assert {(r["held_for"], r["sender"], r["state"]) for r in rows} == {
            ("@b:localhost", SHOP, "pending")}
        assert [json.loads(r["content"])["body"] for r in rows] == \
            ["message 0", "message 1", "message 2"]
        assert not await db.fetchval(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name='pending_direct'"
        ) if database_url.startswith("postgres") else not await db.fetchval(
            "SELECT COUNT(*) FROM sqlite_master WHERE name='pending_direct'")
    finally:
        await db.stop()


async def test_a_build_hook_gives_the_content_at_send_time_holds_or_drops(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    # A campaign post's words come from its campaign and shop as they are when it is sent.
    shop = {"status": "suspended"}

    async def build(message: Outgoing) -> dict[str, Any] | Hold | Drop:
        if message.subject == "gone":
            return Drop("the product was deleted")
        if shop["status"] != "approved":
            return Hold("shop is not active")
        return {"msgtype": "m.text", "body": f"post {message.subject}"}

    outbox.on_build("campaign_post", build)
    for subject in ("1", "gone", "2"):
        await outbox.record(Message(txn_id=f"p.{subject}", room_id="!a:localhost",
                                    sender=SHOP, content={}, kind="campaign_post",
                                    subject=subject))
    await _drain(outbox)
    row = await db.fetchrow("SELECT attempts, last_error, next_attempt_at FROM outbound_message"
                            " WHERE txn_id='p.1'")
    assert _bodies(rooms, "!a:localhost") == []  # held: the room waits, no try counted
    assert (row["attempts"], row["last_error"]) == (0, "shop is not active")
    assert row["next_attempt_at"] > outbox_module.now_ms() + 50_000
    shop["status"] = "approved"
    await _all_due(db)
    await _drain(outbox)
    assert _bodies(rooms, "!a:localhost") == ["post 1", "post 2"]
    assert await outbox.state_of("p.gone") == ("dropped", None)
    with pytest.raises(MessageParked, match="deleted"):
        await outbox.wait_sent("p.gone", 1)


async def test_failed_and_parked_hooks_follow_each_try(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    failures: list[Failure] = []
    parked: list[tuple[str | None, str]] = []

    async def on_failed(message: Outgoing, failure: Failure) -> None:
        failures.append(failure)

    async def on_parked(message: Outgoing, error: str) -> None:
        parked.append((message.subject, error))

    outbox.on_failed("card_edit", on_failed)
    outbox.on_parked("card_edit", on_parked)
    rooms.failing["!a:localhost"] = 2
    await outbox.record(Message(txn_id="e.1", room_id="!a:localhost", sender=SHOP,
                                content=_text(1), kind="card_edit", subject="$card"))
    await _drain(outbox)
    assert failures == [Failure(1, "MatrixConnectionError: connection reset", False)]
    assert parked == []
    await db.execute("UPDATE outbound_message SET attempts=$1, next_attempt_at=0"
                     " WHERE txn_id='e.1'", outbox_module.BACKOFF.max_attempts - 1)
    await _drain(outbox)
    assert failures[-1].parked and failures[-1].attempts == outbox_module.BACKOFF.max_attempts
    assert parked == [("$card", "MatrixConnectionError: connection reset")]


async def test_a_newer_message_replaces_the_waiting_one_and_withdraw_takes_back(
        db: Database, rooms: Room, outbox: Outbox) -> None:
    # A newer price for the same card: only the newer edit goes out.
    rooms.failing["!a:localhost"] = 1
    await outbox.record(Message(txn_id="e.1", room_id="!a:localhost", sender=SHOP,
                                content=_text(1), kind="card_edit", subject="$card"))
    await _drain(outbox)  # its first try failed: it waits for a retry
    replaced = await outbox.replace_pending(Message(
        txn_id="e.2", room_id="!a:localhost", sender=SHOP, content=_text(2),
        kind="card_edit", subject="$card"))
    assert replaced == 1
    await outbox.record(Message(txn_id="p.1", room_id="!b:localhost", sender=SHOP,
                                content=_text(3), kind="campaign_post", subject="7"))
    assert await outbox.withdraw("campaign_post", "7") == 1
    assert await outbox.withdraw("campaign_post", "7") == 0
    await _all_due(db)
    await _drain(outbox)
    assert _bodies(rooms, "!a:localhost") == ["message 2"]
    assert _bodies(rooms, "!b:localhost") == []
    assert await outbox.state_of("e.1") == ("replaced", None)
    assert await outbox.state_of("p.1") == ("withdrawn", None)


async def test_waiting_campaign_posts_move_into_the_outbox_and_a_half_sent_one_is_adopted(
        database_url: str, rooms: Room) -> None:
    before = UpgradeTable(version_table_name="commerce_version", database_name="commerce")
    before.upgrades = upgrade_table.upgrades[:9]
    old = open_database(database_url, before, "commerce")
    await old.start()
    try:
        await old.execute("INSERT INTO merchant (slug, name, mxid, owner_mxid, status,"
                          " created_at) VALUES ('demo', 'Demo', $1, '@o:localhost',"
                          " 'approved', 1)", SHOP)
        await old.execute("INSERT INTO campaign (merchant_slug, kind, fields, state, created_by,"
                          " created_at) VALUES ('demo', 'announcement', '{}', 'sending',"
                          " '@o:localhost', 1)")
        campaign_id = await old.fetchval("SELECT MAX(id) FROM campaign")
        for room, state, attempts in (("!a:localhost", "sent", 1),
                                      ("!b:localhost", "pending", 1),
                                      ("!c:localhost", "pending", 0)):
            await old.execute("INSERT INTO outbox (campaign_id, room_id, state, attempts)"
                              " VALUES ($1, $2, $3, $4)", campaign_id, room, state, attempts)
        half_sent = await old.fetchval("SELECT id FROM outbox WHERE room_id='!b:localhost'")
    finally:
        await old.stop()
    # The post to !b reached its room; the answer was lost before the old Mercato stopped.
    rooms.events["!b:localhost"] = [{"event_id": "$old", "sender": SHOP, "content": {
        "body": "post", MARKER: f"mercato.outbox.{half_sent}"}}]
    db = open_database(database_url, upgrade_table, "commerce")
    await db.start()
    try:
        moved = await db.fetch("SELECT txn_id, room_id, sender, kind, subject, attempts,"
                               " content FROM outbound_message ORDER BY id")
        assert [(r["room_id"], r["sender"], r["kind"], r["attempts"], r["content"])
                for r in moved] == [("!b:localhost", SHOP, "campaign_post", 1, "{}"),
                                    ("!c:localhost", SHOP, "campaign_post", 0, "{}")]
        assert moved[0]["txn_id"] == f"mercato.outbox.{half_sent}"
        assert moved[0]["subject"] == str(half_sent)
        outbox = Outbox(db, "test", lambda mxid: Intent(rooms, mxid))  # type: ignore[arg-type]

        async def build(message: Outgoing) -> dict[str, Any]:
            return {"msgtype": "m.text", "body": "post"}

        outbox.on_build("campaign_post", build)
        with capture_logs() as logs:
            await _drain(outbox)
        assert any(e["event"] == "send.adopted" for e in logs)
        assert _bodies(rooms, "!b:localhost") == ["post"]  # adopted, not sent again
        assert _bodies(rooms, "!c:localhost") == ["post"]
        assert await outbox.state_of(f"mercato.outbox.{half_sent}") == ("sent", "$old")
    finally:
        await db.stop()
