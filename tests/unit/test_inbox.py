"""The appservice transaction inbox, on SQLite and on PostgreSQL.

Events are stored before Synapse gets its 200, deduplicated by txnId and event ID,
handled in order per room and concurrently across rooms, retried and finally parked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from mercato.db import Database, UpgradeTable, durable_transaction, is_postgres, open_database
from mercato.matrix.inbox import (
    MAX_ATTEMPTS,
    RETENTION_SECONDS,
    Inbox,
    retry_delay_ms,
    upgrade_table,
)

ROOM_A = "!a:localhost"
ROOM_B = "!b:localhost"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, UpgradeTable(), "test")
    await database.start()
    await upgrade_table.upgrade(database)
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
def inbox(db: Database) -> Inbox:
    return Inbox(db, "test")


def message(event_id: str, room_id: str = ROOM_A, body: str = "hi") -> dict[str, Any]:
    return {"type": "m.room.message", "event_id": event_id, "room_id": room_id,
            "sender": "@buyer:localhost", "content": {"msgtype": "m.text", "body": body}}


class Recorder:
    """A handler that records the event IDs it handled, in order."""

    def __init__(self, before: Callable[[dict[str, Any]], Awaitable[None]] | None = None):
        self.calls: list[str] = []
        self.handled: list[str] = []
        self._rooms: dict[str, str] = {}
        self._before = before

    async def __call__(self, event: dict[str, Any]) -> None:
        self.calls.append(event["event_id"])
        self._rooms[event["event_id"]] = event["room_id"]
        if self._before:
            await self._before(event)
        self.handled.append(event["event_id"])

    def in_room(self, room_id: str) -> list[str]:
        return [e for e in self.handled if self._rooms[e] == room_id]


async def inbox_row(db: Database, event_id: str) -> Any:
    return await db.fetchrow(
        "SELECT attempts, next_attempt_at, handled_at, failed, last_error FROM as_inbox"
        " WHERE event_id=$1", event_id)


async def make_retries_due(db: Database) -> None:
    # Instead of sleeping through the backoff.
    await db.execute("UPDATE as_inbox SET next_attempt_at=0 WHERE handled_at IS NULL")


async def count(db: Database, table: str) -> int:
    return await db.fetchval(f"SELECT COUNT(*) FROM {table}")


# Storing


async def test_schema_is_at_version_2(db: Database) -> None:
    assert await db.fetchval("SELECT version FROM mercato_inbox_version") == 2
    assert await count(db, "as_transaction") == 0  # with its digest column
    await db.execute("INSERT INTO as_transaction (txn_id, received_at, event_count, digest)"
                     " VALUES ('t', 0, 0, 'd')")


async def test_transaction_events_are_stored_in_order(db: Database, inbox: Inbox) -> None:
    events = [message("$a1", body="Grüße 🛍"), message("$b1", ROOM_B), message("$a2")]
    assert await inbox.store_transaction("txn1", events) is True
    pending = await inbox.pending()
    assert [p.event_id for p in pending] == ["$a1", "$b1", "$a2"]
    assert [p.room_id for p in pending] == [ROOM_A, ROOM_B, ROOM_A]
    assert pending[0].event == events[0]
    assert pending[0].attempts == 0
    assert await inbox.count_pending() == 3
    assert await db.fetchval(
        "SELECT event_count FROM as_transaction WHERE txn_id=$1", "txn1") == 3


async def test_a_stored_transaction_is_flushed_to_disk_and_handling_writes_are_not(
        db: Database, inbox: Inbox) -> None:
    """On SQLite: a transaction Synapse is told is stored is committed with
    synchronous=FULL (it survives a power cut); other writes run with NORMAL (they
    survive the process being killed; a lost one means an event handled again)."""
    if is_postgres(db):
        return  # PostgreSQL flushes every commit
    seen: list[int] = []

    async def record_mode(*_: Any) -> None:
        seen.append(await db.fetchval("PRAGMA synchronous"))

    assert await db.fetchval("PRAGMA synchronous") == 1  # NORMAL
    async with durable_transaction(db) as conn:
        seen.append(await conn.fetchval("PRAGMA synchronous"))
    assert seen == [2]  # FULL for that commit
    assert await db.fetchval("PRAGMA synchronous") == 1
    await inbox.store_transaction("txn1", [message("$a1")])
    await inbox.process_once(Recorder(record_mode))
    assert seen == [2, 1]


async def test_same_txn_id_twice_is_stored_once(db: Database, inbox: Inbox) -> None:
    assert await inbox.store_transaction("txn1", [message("$a1"), message("$a2")]) is True
    assert await inbox.store_transaction("txn1", [message("$a1"), message("$a2")]) is False
    assert await count(db, "as_inbox") == 2
    assert await count(db, "as_transaction") == 1


async def test_a_reused_txn_id_with_new_events_is_stored(db: Database, inbox: Inbox) -> None:
    """Synapse on SQLite numbers transactions from 1 again after it restarts."""
    assert await inbox.store_transaction("1", [message("$a1"), message("$a2")]) is True
    await inbox.process_once(Recorder())
    # A retry of the same transaction (its `unsigned.age` grown) is still a retry …
    aged = [{**message("$a1"), "unsigned": {"age": 9000}}, message("$a2")]
    assert await inbox.store_transaction("1", aged) is False
    # … but the same txnId with other events, after Synapse restarted, is new.
    assert await inbox.store_transaction("1", [message("$a2"), message("$a3")]) is True
    handler = Recorder()
    await inbox.process_once(handler)
    assert handler.calls == ["$a3"]
    assert await count(db, "as_inbox") == 3


async def test_same_event_in_two_transactions_is_stored_once(db: Database, inbox: Inbox) -> None:
    assert await inbox.store_transaction("txn1", [message("$a1")]) is True
    assert await inbox.store_transaction("txn2", [message("$a1"), message("$a2")]) is True
    assert [p.event_id for p in await inbox.pending()] == ["$a1", "$a2"]
    assert await count(db, "as_transaction") == 2


async def test_event_already_handled_is_not_handled_again(inbox: Inbox) -> None:
    await inbox.store_transaction("txn1", [message("$a1")])
    handler = Recorder()
    await inbox.process_once(handler)
    await inbox.store_transaction("txn2", [message("$a1")])
    await inbox.process_once(handler)
    assert handler.calls == ["$a1"]


async def test_presence_waits_in_its_senders_queue_other_roomless_events_are_ignored(
        db: Database, inbox: Inbox) -> None:
    presence = [{"type": "m.presence", "sender": "@buyer:localhost",
                 "content": {"presence": state}} for state in ("online", "unavailable")]
    odd = {"type": "m.something", "sender": "@buyer:localhost", "content": {}}
    assert await inbox.store_transaction("txn1", [presence[0], odd, message("$a1"),
                                                  presence[1]]) is True
    assert [(p.room_id, p.event.get("content")) for p in await inbox.pending()] == [
        ("presence @buyer:localhost", {"presence": "online"}),
        (ROOM_A, {"msgtype": "m.text", "body": "hi"}),
        ("presence @buyer:localhost", {"presence": "unavailable"})]
    seen: list[str] = []

    async def handler(event: dict[str, Any]) -> None:
        seen.append(event.get("event_id") or event["content"]["presence"])

    await inbox.process_once(handler)
    assert sorted(seen) == ["$a1", "online", "unavailable"]
    assert seen.index("online") < seen.index("unavailable")
    assert await inbox.count_pending() == 0


async def test_empty_transaction_is_remembered(db: Database, inbox: Inbox) -> None:
    assert await inbox.store_transaction("txn1", []) is True
    assert await inbox.store_transaction("txn1", []) is False
    assert await count(db, "as_inbox") == 0


# Handling


async def test_process_once_handles_everything_and_marks_it(db: Database, inbox: Inbox) -> None:
    await inbox.store_transaction("txn1", [message("$a1"), message("$b1", ROOM_B),
                                           message("$a2")])
    handler = Recorder()
    progressed, next_retry = await inbox.process_once(handler)
    assert progressed is True
    assert next_retry is None
    assert sorted(handler.handled) == ["$a1", "$a2", "$b1"]
    assert handler.in_room(ROOM_A) == ["$a1", "$a2"]
    assert await inbox.count_pending() == 0
    row = await inbox_row(db, "$a2")
    assert row["handled_at"] is not None
    assert not row["failed"]
    # Each try on record once (the next event's try is written with the previous end).
    for event_id in ("$a1", "$a2", "$b1"):
        assert (await inbox_row(db, event_id))["attempts"] == 1, event_id
    assert await inbox.process_once(handler) == (False, None)
    assert len(handler.calls) == 3


async def test_the_next_events_try_is_on_record_before_it_starts(db: Database,
                                                                 inbox: Inbox) -> None:
    await inbox.store_transaction("txn1", [message("$a1"), message("$a2"), message("$a3")])
    seen: dict[str, int] = {}

    async def attempts_while_handled(event: dict[str, Any]) -> None:
        seen[event["event_id"]] = (await inbox_row(db, event["event_id"]))["attempts"]

    await inbox.process_once(attempts_while_handled)
    assert seen == {"$a1": 1, "$a2": 1, "$a3": 1}


async def test_rooms_are_handled_concurrently_each_in_order(inbox: Inbox) -> None:
    release = asyncio.Event()

    async def slow_in_room_a(event: dict[str, Any]) -> None:
        if event["event_id"] == "$a1":
            await release.wait()

    handler = Recorder(slow_in_room_a)
    await inbox.store_transaction("txn1", [message("$a1"), message("$b1", ROOM_B),
                                           message("$a2"), message("$b2", ROOM_B),
                                           message("$a3")])
    passing = asyncio.create_task(inbox.process_once(handler))
    try:
        async with asyncio.timeout(10):
            while handler.in_room(ROOM_B) != ["$b1", "$b2"]:
                await asyncio.sleep(0.01)
        # Room B finished while room A's first event is still being handled.
        assert "$a1" in handler.calls
        assert handler.in_room(ROOM_A) == []
        assert "$a2" not in handler.calls
        assert not passing.done()
        release.set()
        async with asyncio.timeout(10):
            progressed, _ = await passing
    finally:
        release.set()
        passing.cancel()
    assert progressed is True
    assert handler.in_room(ROOM_A) == ["$a1", "$a2", "$a3"]
    assert await inbox.count_pending() == 0


async def test_a_component_may_queue_events_by_room_and_sender(db: Database) -> None:
    """The commerce appservice's 🎟️ claims: one queue per (room, sender) — two people's
    handled side by side, one person's in order — while the room's other events keep
    theirs."""
    def by_sender(event: dict[str, Any]) -> str | None:
        if event.get("type") == "m.reaction":
            return f"{event['room_id']} {event['sender']}"
        return event.get("room_id")

    inbox = Inbox(db, "test", queue_of=by_sender)

    def reaction(event_id: str, sender: str) -> dict[str, Any]:
        return {"type": "m.reaction", "event_id": event_id, "room_id": ROOM_A,
                "sender": sender, "content": {}}

    release = asyncio.Event()

    async def ann_is_slow(event: dict[str, Any]) -> None:
        if event["event_id"] == "$ann1":
            await release.wait()

    handler = Recorder(ann_is_slow)
    await inbox.store_transaction("txn1", [
        reaction("$ann1", "@ann:localhost"), reaction("$bob1", "@bob:localhost"),
        reaction("$ann2", "@ann:localhost"), reaction("$bob2", "@bob:localhost"),
        message("$m1")])
    assert [p.room_id for p in await inbox.pending()] == [
        f"{ROOM_A} @ann:localhost", f"{ROOM_A} @bob:localhost", f"{ROOM_A} @ann:localhost",
        f"{ROOM_A} @bob:localhost", ROOM_A]
    passing = asyncio.create_task(inbox.process_once(handler))
    try:
        async with asyncio.timeout(10):
            while not {"$bob1", "$bob2", "$m1"} <= set(handler.handled):
                await asyncio.sleep(0.01)
        assert handler.handled.index("$bob1") < handler.handled.index("$bob2")
        assert "$ann1" in handler.calls and "$ann2" not in handler.calls  # Ann's wait
        release.set()
        async with asyncio.timeout(10):
            await passing
    finally:
        release.set()
        passing.cancel()
    assert handler.handled.index("$ann1") < handler.handled.index("$ann2")
    assert await inbox.count_pending() == 0


async def test_failing_event_is_retried_and_holds_back_its_room(
    db: Database, inbox: Inbox
) -> None:
    failures = {"$a1": 1}

    async def fail_once(event: dict[str, Any]) -> None:
        if failures.get(event["event_id"], 0) > 0:
            failures[event["event_id"]] -= 1
            raise RuntimeError("shop unreachable")

    handler = Recorder(fail_once)
    await inbox.store_transaction("txn1", [message("$a1"), message("$a2"),
                                           message("$b1", ROOM_B)])
    before = int(time.time() * 1000)
    await inbox.process_once(handler)
    after = int(time.time() * 1000)

    row = await inbox_row(db, "$a1")
    assert row["attempts"] == 1
    assert before + retry_delay_ms(1) <= row["next_attempt_at"] <= after + retry_delay_ms(1)
    assert row["last_error"] == "RuntimeError: shop unreachable"
    assert row["handled_at"] is None
    assert not row["failed"]
    assert handler.handled == ["$b1"]  # the other room carried on
    assert "$a2" not in handler.calls  # later events of the room wait

    # Not due yet: nothing is tried.
    await inbox.process_once(handler)
    assert handler.calls.count("$a1") == 1

    await make_retries_due(db)
    progressed, _ = await inbox.process_once(handler)
    assert progressed is True
    assert handler.in_room(ROOM_A) == ["$a1", "$a2"]
    row = await inbox_row(db, "$a1")
    assert row["handled_at"] is not None
    assert not row["failed"]
    assert row["attempts"] == 2  # both tries are on record, the failed one too
    assert await inbox.count_pending() == 0


async def test_an_event_that_ends_the_process_each_time_is_parked(
    db: Database, inbox: Inbox
) -> None:
    """A try is recorded before it starts: one cut short by a crash counts."""
    await inbox.store_transaction("txn1", [message("$a1"), message("$a2")])
    await db.execute("UPDATE as_inbox SET attempts=$1 WHERE event_id=$2",
                     MAX_ATTEMPTS, "$a1")  # as after that many crashes mid-handler
    handler = Recorder()
    await inbox.process_once(handler)
    assert handler.calls == ["$a2"]
    row = await inbox_row(db, "$a1")
    assert row["failed"] and row["handled_at"] is not None
    assert "process stopped" in row["last_error"]


async def test_event_that_keeps_failing_is_parked_and_the_room_continues(
    db: Database, inbox: Inbox
) -> None:
    async def poisoned(event: dict[str, Any]) -> None:
        if event["event_id"] == "$a1":
            raise ValueError(f"cannot parse {event['content']['body']}")

    handler = Recorder(poisoned)
    await inbox.store_transaction("txn1", [message("$a1", body="garbage"), message("$a2")])
    for attempt in range(1, MAX_ATTEMPTS):
        await inbox.process_once(handler)
        row = await inbox_row(db, "$a1")
        assert row["attempts"] == attempt
        assert row["handled_at"] is None
        assert not row["failed"]
        assert handler.handled == []
        await make_retries_due(db)

    await inbox.process_once(handler)
    row = await inbox_row(db, "$a1")
    assert row["attempts"] == MAX_ATTEMPTS
    assert row["failed"]
    assert row["handled_at"] is not None
    assert row["last_error"] == "ValueError: cannot parse garbage"
    assert handler.handled == ["$a2"]
    assert await inbox.count_pending() == 0

    await inbox.process_once(handler)
    assert handler.calls.count("$a1") == MAX_ATTEMPTS


async def test_process_once_reports_when_a_failed_event_is_due(inbox: Inbox) -> None:
    async def fail(event: dict[str, Any]) -> None:
        raise RuntimeError("down")

    await inbox.store_transaction("txn1", [message("$a1")])
    before = int(time.time() * 1000)
    progressed, next_retry = await inbox.process_once(Recorder(fail))
    assert progressed is False
    assert next_retry is not None
    assert before + retry_delay_ms(1) <= next_retry <= before + retry_delay_ms(1) + 5000


async def test_process_once_reports_a_pending_retry(db: Database, inbox: Inbox) -> None:
    async def fail(event: dict[str, Any]) -> None:
        raise RuntimeError("down")

    await inbox.store_transaction("txn1", [message("$a1")])
    await inbox.process_once(Recorder(fail))
    due = (await inbox_row(db, "$a1"))["next_attempt_at"]
    assert await inbox.process_once(Recorder(fail)) == (False, due)


async def test_run_handles_stored_events_until_stopped(inbox: Inbox) -> None:
    handler = Recorder()
    inbox.start(handler)
    try:
        await inbox.store_transaction("txn1", [message("$a1"), message("$b1", ROOM_B)])
        async with asyncio.timeout(10):
            while sorted(handler.handled) != ["$a1", "$b1"]:
                await asyncio.sleep(0.01)
    finally:
        await inbox.stop()
    assert await inbox.count_pending() == 0


async def test_prune_forgets_only_old_handled_events(db: Database, inbox: Inbox) -> None:
    await inbox.store_transaction("old", [message("$a1"), message("$a2")])
    await inbox.process_once(Recorder())
    await inbox.store_transaction("new", [message("$a3")])
    long_ago = int(time.time() * 1000) - RETENTION_SECONDS * 1000 - 60_000
    await db.execute("UPDATE as_inbox SET handled_at=$1 WHERE event_id=$2", long_ago, "$a1")
    await db.execute("UPDATE as_transaction SET received_at=$1 WHERE txn_id=$2",
                     long_ago, "old")
    await inbox.prune()
    remaining = await db.fetch("SELECT event_id FROM as_inbox ORDER BY seq")
    assert [r["event_id"] for r in remaining] == ["$a2", "$a3"]
    assert [r["txn_id"] for r in await db.fetch("SELECT txn_id FROM as_transaction")] == ["new"]


@pytest.mark.parametrize(("attempts", "delay"), [
    (0, 1000), (1, 1000), (2, 2000), (3, 4000), (6, 32_000), (7, 60_000), (50, 60_000),
])
def test_retry_delay_doubles_up_to_a_minute(attempts: int, delay: int) -> None:
    assert retry_delay_ms(attempts) == delay


async def test_a_room_stuck_with_many_waiting_events_does_not_hide_the_others(
        db: Database, inbox: Inbox) -> None:
    # Room A: its first event's handler hangs and 600 more wait behind it — more than a
    # pass reads (500). Room C: its first event failed and waits for its retry, with 600
    # behind it. Room B's one event came after all of them.
    release = asyncio.Event()

    async def stuck_in_room_a(event: dict[str, Any]) -> None:
        if event["event_id"] == "$a0":
            await release.wait()

    handler = Recorder(stuck_in_room_a)
    for room, prefix in ((ROOM_A, "$a"), ("!c:localhost", "$c")):
        for chunk in range(6):
            await inbox.store_transaction(f"{prefix}{chunk}", [
                message(f"{prefix}{chunk * 100 + k}", room) for k in range(100)])
    await db.execute("UPDATE as_inbox SET attempts=1, next_attempt_at=$1 WHERE event_id='$c0'",
                     int(time.time() * 1000) + 60_000)
    await inbox.store_transaction("txn-b", [message("$b1", ROOM_B)])
    inbox.start(handler)
    try:
        async with asyncio.timeout(10):
            while handler.in_room(ROOM_B) != ["$b1"]:
                await asyncio.sleep(0.01)
        assert handler.in_room(ROOM_A) == [] and handler.in_room("!c:localhost") == []
        release.set()
        async with asyncio.timeout(30):
            while len(handler.in_room(ROOM_A)) < 600:
                await asyncio.sleep(0.05)
    finally:
        release.set()
        await inbox.stop()
    assert handler.in_room(ROOM_A) == [f"$a{n}" for n in range(600)]
    assert handler.in_room("!c:localhost") == []  # still waiting for its retry
    assert await inbox.count_pending() == 600
