"""The outbox: every message a component sends is recorded first, then sent exactly once.

mautrix retries a send by itself, and Synapse remembers an appservice's transaction IDs
only in memory: after a Synapse restart a blind resend posts a second copy, and a crash
of the component between deciding to send and sending loses the message. So a message
is a row first (`outbound_message`, created by each component's own numbered database
upgrade, `create_outbox_table`), with a transaction ID stable across tries. A worker
sends each room's messages in the order they were recorded, one try at a time
(`send_once` with one attempt); the try is recorded before it starts, and a retried
message is first looked for in the room by its marker, so a try whose answer was lost
is adopted, not repeated. A failed try is retried with backoff (the inbox's arithmetic,
retrying.py) while the room's later messages wait; after the last try the message is
parked (`failed`), logged and counted.

A message may be held for a user (`held_for`): a DM the buyer has not joined yet waits
for their join (`release`). A join that comes while such a message is being recorded is
released before the message exists; so each new hold is checked once, a few seconds
after it was recorded, and let go if the user is in the room by then.

Each message has a `kind` (what it is, for metrics and for the component's hook called
when it is sent) and a `subject` (what the hook updates: a coupon code, the event a
relay answers).

A caller that must answer with the event ID (an API call sharing a card) records the
message and waits for the worker to send it (`send`, with a timeout): the answer keeps
its shape, and the message is still sent once and in order if the wait times out.

A bridged message may carry its network's time (`timestamp`, kept with the content
under TIMESTAMP_KEY, never sent). A component that promises to keep nothing of what it
said (the contacts bridge) asks the outbox to forget a message's content and subject
once it is sent (`forget_sent`).

What each kind means to its component (content built at send time, what to write down
when it is sent, fails or is parked) are hooks (outbox_hooks.py). A newer message can take
the place of one still waiting (`replace_pending`: a newer price for the same card), and
waiting messages can be taken back (`withdraw`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mautrix.api import Method
from mautrix.appservice import IntentAPI
from mautrix.types import EventType
from prometheus_client import Counter, Gauge

from mercato.db import Connection, Database, Scheme, database_unavailable
from mercato.faults import fault_point
from mercato.logging import get_logger
from mercato.matrix.outbox_hooks import Drop, Failure, Hold, KindHooks
from mercato.matrix.paths import matrix_path
from mercato.matrix.retrying import Backoff, now_ms
from mercato.matrix.sending import send_once
from mercato.queues import QueueWorker

log = get_logger(__name__)

BACKOFF = Backoff(max_attempts=10, first_ms=2000, cap_ms=300_000)  # 2 s … 5 min, ~25 min in all
# Rooms sent to at once. 8 at first; in a flash sale on the scale profile 32 brought the
# buyers' codes and cards about a fifth sooner (bench/notes.md, "Flash sale").
CONCURRENT_ROOMS = 32
HEADS_READ = 500  # rooms looked at per pass
SEND_WAIT_SECONDS = 30.0  # how long `send` waits for its message by default
RETENTION_MS = 7 * 24 * 3600 * 1000
TIMESTAMP_KEY = "org.mercato.outbox.ts"  # in a stored content: the network's time, ms
HOLD_CHECK_AFTER_MS = 3000  # a new hold is checked once, this long after it was recorded
HOLD_CHECK_WINDOW_MS = 120_000  # holds older than this are left to the join
HOLD_CHECKS_PER_PASS = 50

MESSAGES = Counter("mercato_outbox_messages_total",
                   "Messages the outbox sent, retried after a failed try, or parked after the"
                   " last try", ["component", "kind", "outcome"])
PENDING = Gauge("mercato_outbox_pending", "Rooms with a message waiting to be sent",
                ["component"])


async def create_outbox_table(conn: Connection, scheme: Scheme) -> None:
    """The outbox's table, as the first version of it: called by each component's numbered
    upgrade that adds it (a later change is a new upgrade, never an edit here)."""
    serial = "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    await conn.execute(f"""
        CREATE TABLE outbound_message (
            id              {serial},
            txn_id          TEXT NOT NULL UNIQUE,
            room_id         TEXT NOT NULL,
            sender          TEXT NOT NULL,
            event_type      TEXT NOT NULL DEFAULT 'm.room.message',
            content         TEXT NOT NULL,
            kind            TEXT NOT NULL,
            subject         TEXT,
            held_for        TEXT,
            state           TEXT NOT NULL DEFAULT 'pending',
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL DEFAULT 0,
            last_error      TEXT,
            event_id        TEXT,
            created_at      BIGINT NOT NULL,
            sent_at         BIGINT
        )
    """)
    await conn.execute("CREATE INDEX outbound_message_queue ON outbound_message"
                       " (room_id, state, id)")
    await conn.execute("CREATE INDEX outbound_message_pending ON outbound_message (state, id)")


@dataclass(frozen=True)
class Message:
    """A message to send: `txn_id` names it for good (the same one twice is one message)."""

    txn_id: str
    room_id: str
    sender: str
    content: dict[str, Any]
    kind: str
    subject: str | None = None
    held_for: str | None = None
    event_type: str = "m.room.message"
    timestamp: int | None = None  # ms: the time a bridged message had on its network


@dataclass(frozen=True)
class Outgoing:
    """A recorded message as the worker sees it."""

    id: int
    txn_id: str
    room_id: str
    sender: str
    event_type: str
    content: dict[str, Any]
    kind: str
    subject: str | None
    held_for: str | None
    attempts: int
    next_attempt_at: int
    timestamp: int | None = None


class MessageParked(Exception):
    """The message was given up after its last try (or earlier); `last_error` says why."""


_COLUMNS = ("id, txn_id, room_id, sender, event_type, content, kind, subject, held_for,"
            " attempts, next_attempt_at")


def _stored_content(message: Message) -> dict[str, Any]:
    if message.timestamp is None:
        return message.content
    return {**message.content, TIMESTAMP_KEY: message.timestamp}


def _outgoing(row: Any) -> Outgoing:
    data = {k: row[k] for k in row.keys()}
    data["content"] = json.loads(data["content"])
    data["timestamp"] = data["content"].pop(TIMESTAMP_KEY, None)
    return Outgoing(**data)


@dataclass
class _Waiters:
    futures: dict[str, list[asyncio.Future[str]]] = field(default_factory=dict)

    def add(self, txn_id: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.futures.setdefault(txn_id, []).append(future)
        return future

    def discard(self, txn_id: str, future: asyncio.Future[str]) -> None:
        waiting = self.futures.get(txn_id, [])
        if future in waiting:
            waiting.remove(future)
        if not waiting:
            self.futures.pop(txn_id, None)

    def settle(self, txn_id: str, event_id: str | None, error: str = "") -> None:
        for future in self.futures.pop(txn_id, []):
            if future.done():
                continue
            if event_id is None:
                future.set_exception(MessageParked(error))
            else:
                future.set_result(event_id)


class Outbox:
    def __init__(self, db: Database, component: str,
                 intent_for: Callable[[str], IntentAPI], *, forget_sent: bool = False) -> None:
        self.db = db
        self.component = component
        self.intent_for = intent_for
        self.forget_sent = forget_sent
        self.hooks = KindHooks()
        self.on_sent = self.hooks.on_sent
        self.on_build = self.hooks.on_build
        self.on_failed = self.hooks.on_failed
        self.on_parked = self.hooks.on_parked
        self._waiters = _Waiters()
        # Each room is a queue: its messages one after another, rooms side by side.
        self.worker = QueueWorker("outbox", self._due_rooms, self._drain_room,
                                  concurrency=CONCURRENT_ROOMS, after_pass=self._after_pass)
        self._last_prune = 0
        self._holds_checked: dict[int, int] = {}  # message id → when its hold was checked

    # -- recording ----------------------------------------------------------------------

    async def record(self, message: Message, conn: Connection | None = None) -> None:
        """Record the message (nothing if its txnId is recorded already) and wake the
        worker. With `conn`, inside the caller's transaction: the worker wakes at its next
        pass (within a second) or at the caller's `wake()`."""
        await (conn or self.db).execute(
            "INSERT INTO outbound_message (txn_id, room_id, sender, event_type, content, kind,"
            " subject, held_for, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
            " ON CONFLICT (txn_id) DO NOTHING",
            message.txn_id, message.room_id, message.sender, message.event_type,
            json.dumps(_stored_content(message)), message.kind, message.subject,
            message.held_for, now_ms())
        if conn is None:
            self.wake()

    def wake(self) -> None:
        self.worker.wake()

    async def replace_pending(self, message: Message, conn: Connection | None = None) -> int:
        """Record the message in place of the waiting ones of its kind and subject in its
        room (state `replaced`); returns how many it replaced. One being tried now is not
        stopped: if it goes out, the new one follows it."""
        replaced = await self._take_back("replaced", message.kind, message.subject,
                                         message.room_id, conn)
        await self.record(message, conn)
        return replaced

    async def withdraw(self, kind: str, subject: str) -> int:
        """Take back the waiting messages of this kind and subject (state `withdrawn`);
        returns how many. One being tried now is not stopped."""
        return await self._take_back("withdrawn", kind, subject)

    async def _take_back(self, state: str, kind: str, subject: str | None,
                         room_id: str | None = None, conn: Connection | None = None) -> int:
        db = conn or self.db
        where = ("state='pending' AND kind=$1 AND subject=$2"
                 " AND (CAST($3 AS TEXT) IS NULL OR room_id=$3)")
        rows = await db.fetch(f"SELECT txn_id FROM outbound_message WHERE {where}",
                              kind, subject, room_id)
        if rows:
            await db.execute(f"UPDATE outbound_message SET state=$4, last_error=$4 WHERE {where}",
                             kind, subject, room_id, state)
        if conn is None:
            for row in rows:
                self._waiters.settle(row["txn_id"], None, state)
        return len(rows)

    async def send(self, message: Message, timeout: float = SEND_WAIT_SECONDS) -> str | None:
        """Record the message and wait for it to be sent: its event ID, or None if it is
        still waiting after `timeout` (it is sent later all the same). Raises
        MessageParked if it was given up."""
        await self.record(message)
        return await self.wait_sent(message.txn_id, timeout)

    async def wait_sent(self, txn_id: str, timeout: float) -> str | None:
        future = self._waiters.add(txn_id)
        try:
            row = await self.db.fetchrow(
                "SELECT state, event_id, last_error FROM outbound_message WHERE txn_id=$1",
                txn_id)
            if row is not None and row["state"] == "sent":
                return str(row["event_id"])
            if row is not None and row["state"] not in ("pending", "sent"):
                raise MessageParked(row["last_error"] or "given up")  # parked, dropped…
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                log.info("outbox.still_waiting", component=self.component, txn_id=txn_id)
                return None
        finally:
            self._waiters.discard(txn_id, future)

    async def release(self, room_id: str, user_id: str) -> int:
        """The user joined: the messages held for them in this room go out, in order."""
        released = await self.db.fetchval(
            "SELECT COUNT(*) FROM outbound_message WHERE room_id=$1 AND held_for=$2"
            " AND state='pending'", room_id, user_id)
        if released:
            await self.db.execute(
                "UPDATE outbound_message SET held_for=NULL WHERE room_id=$1 AND held_for=$2"
                " AND state='pending'", room_id, user_id)
            self.wake()
        return int(released)

    async def state_of(self, txn_id: str) -> tuple[str, str | None] | None:
        """(state, event ID) of a recorded message, None if there is none."""
        row = await self.db.fetchrow(
            "SELECT state, event_id FROM outbound_message WHERE txn_id=$1", txn_id)
        return (row["state"], row["event_id"]) if row else None

    # -- the worker ---------------------------------------------------------------------

    def start(self) -> None:
        self.worker.start()

    async def stop(self) -> None:
        await self.worker.stop()

    async def _due_rooms(self) -> list[str]:
        """The rooms whose first pending message is due and not held: only that one of a
        room may go next. (Rooms waiting for a join or a retry are left out, so they
        cannot crowd the others out of the read.)"""
        rows = await self.db.fetch(
            "SELECT room_id FROM outbound_message o WHERE state='pending'"
            " AND held_for IS NULL AND next_attempt_at <= $1 AND NOT EXISTS"
            " (SELECT 1 FROM outbound_message e WHERE e.room_id=o.room_id"
            " AND e.state='pending' AND e.id < o.id) ORDER BY id LIMIT $2",
            now_ms(), HEADS_READ)
        PENDING.labels(self.component).set(len(rows))
        return [row["room_id"] for row in rows]

    async def _drain_room(self, room_id: str) -> None:
        while True:
            row = await self.db.fetchrow(
                f"SELECT {_COLUMNS} FROM outbound_message WHERE room_id=$1"
                " AND state='pending' ORDER BY id LIMIT 1", room_id)
            if row is None:
                return
            message = _outgoing(row)
            if message.held_for or message.next_attempt_at > now_ms():
                return
            if not await self.send_one(message):
                return

    async def _build(self, message: Outgoing) -> Outgoing | Hold | Drop:
        """The message as it is to be sent now (its kind's build hook), or Hold or Drop."""
        hook = self.hooks.build.get(message.kind)
        if hook is None:
            return message
        built = await hook(message)
        if isinstance(built, Hold | Drop):
            return built
        return replace(message, content=built)

    async def _hold(self, message: Outgoing, hold: Hold) -> bool:
        await self.db.execute(
            "UPDATE outbound_message SET last_error=$1, next_attempt_at=$2 WHERE id=$3"
            " AND state='pending'", hold.why[:2000], now_ms() + hold.ms, message.id)
        log.info("outbox.held", component=self.component, kind=message.kind,
                 room_id=message.room_id, txn_id=message.txn_id, why=hold.why)
        return False

    async def _drop(self, message: Outgoing, drop: Drop) -> bool:
        await self.db.execute(
            "UPDATE outbound_message SET state='dropped', last_error=$1 WHERE id=$2"
            " AND state='pending'", drop.why[:2000], message.id)
        log.info("outbox.dropped", component=self.component, kind=message.kind,
                 room_id=message.room_id, txn_id=message.txn_id, why=drop.why)
        self._waiters.settle(message.txn_id, None, drop.why)
        return True

    async def send_one(self, message: Outgoing) -> bool:
        """One try; True when the room's next message may follow (sent, parked, dropped)."""
        built: Outgoing | Hold | Drop | Exception
        try:
            built = await self._build(message)
        except Exception as e:
            if database_unavailable(e):
                raise
            built = e
        if isinstance(built, Hold):
            return await self._hold(message, built)
        if isinstance(built, Drop):
            return await self._drop(message, built)
        attempts = message.attempts + 1
        # The try is on record before it starts: a retry after a crash looks first.
        await self.db.execute("UPDATE outbound_message SET attempts=$1 WHERE id=$2",
                              attempts, message.id)
        if isinstance(built, Exception):  # the build hook failed: a failed try
            return await self._failed(message, attempts, f"{type(built).__name__}: {built}")
        message = built
        try:
            event_id = await send_once(
                self.intent_for(message.sender), message.room_id, message.content,
                txn_id=message.txn_id, attempts=1, look_first=message.attempts > 0,
                event_type=EventType.find(message.event_type, EventType.Class.MESSAGE),
                timestamp=message.timestamp)
        except Exception as e:
            if database_unavailable(e):
                raise
            return await self._failed(message, attempts, f"{type(e).__name__}: {e}")
        fault_point("outbox.message_sent")  # sent, not yet recorded
        hook = self.hooks.sent.get(message.kind)
        if hook is not None:
            await hook(message, str(event_id))
        forget = ", content='{}', subject=NULL" if self.forget_sent else ""
        await self.db.execute(
            f"UPDATE outbound_message SET state='sent', event_id=$1, sent_at=$2,"
            f" last_error=NULL{forget} WHERE id=$3", str(event_id), now_ms(), message.id)
        MESSAGES.labels(self.component, message.kind, "sent").inc()
        log.info("outbox.message_sent", component=self.component, kind=message.kind,
                 room_id=message.room_id, txn_id=message.txn_id, event_id=event_id)
        self._waiters.settle(message.txn_id, str(event_id))
        return True

    async def _failed(self, message: Outgoing, attempts: int, error: str) -> bool:
        parked = BACKOFF.parks(attempts)
        # A parked message is never sent: a forgetful outbox keeps no more of it than of one
        # that was (the room, the error and the transaction ID stay, for the operator).
        forget = ", content='{}', subject=NULL" if parked and self.forget_sent else ""
        # A message replaced or withdrawn while it was tried stays so.
        await self.db.execute(
            "UPDATE outbound_message SET last_error=$1, next_attempt_at=$2, state=$3"
            f"{forget} WHERE id=$4 AND state='pending'", error[:2000],
            BACKOFF.next_try_at(attempts), "failed" if parked else "pending", message.id)
        failed_hook = self.hooks.failed.get(message.kind)
        if failed_hook is not None:
            await failed_hook(message, Failure(attempts, error, parked))
        parked_hook = self.hooks.parked.get(message.kind)
        if parked and parked_hook is not None:
            await parked_hook(message, error)
        MESSAGES.labels(self.component, message.kind, "parked" if parked else "retry").inc()
        if parked:
            log.error("outbox.parked", component=self.component, kind=message.kind,
                      room_id=message.room_id, txn_id=message.txn_id, attempts=attempts,
                      error=error)
            self._waiters.settle(message.txn_id, None, error)
        else:
            log.warning("outbox.send_failed", component=self.component, kind=message.kind,
                        room_id=message.room_id, txn_id=message.txn_id, attempt=attempts,
                        error=error)
        return parked

    async def _after_pass(self) -> None:
        await self._check_new_holds()
        await self._prune()

    async def _check_new_holds(self) -> None:
        """Let go the messages held for a user who is in the room already: the join came
        while they were being recorded (see the module's docstring)."""
        now = now_ms()
        self._holds_checked = {i: at for i, at in self._holds_checked.items()
                               if at > now - HOLD_CHECK_WINDOW_MS}
        rows = await self.db.fetch(
            "SELECT id, room_id, held_for, sender FROM outbound_message WHERE state='pending'"
            " AND held_for IS NOT NULL AND created_at <= $1 AND created_at > $2 ORDER BY id",
            now - HOLD_CHECK_AFTER_MS, now - HOLD_CHECK_WINDOW_MS)
        holds: dict[tuple[str, str], str] = {}
        for row in rows:
            if row["id"] not in self._holds_checked:
                self._holds_checked[row["id"]] = now
                holds.setdefault((row["room_id"], row["held_for"]), row["sender"])
        for (room_id, user_id), sender in list(holds.items())[:HOLD_CHECKS_PER_PASS]:
            try:
                member = await self.intent_for(sender).api.request(Method.GET, matrix_path(
                    "client", "v3", "rooms", room_id, "state", "m.room.member", user_id))
            except Exception as e:  # not in the room yet (404), or the homeserver is away
                if database_unavailable(e):
                    raise
                continue
            if isinstance(member, dict) and member.get("membership") == "join":
                released = await self.release(room_id, user_id)
                log.info("outbox.hold_released", component=self.component, room_id=room_id,
                         user_id=user_id, messages=released)

    async def _prune(self) -> None:
        if now_ms() - self._last_prune < 3600_000:
            return
        self._last_prune = now_ms()
        await self.db.execute("DELETE FROM outbound_message WHERE state='sent' AND sent_at < $1",
                              now_ms() - RETENTION_MS)
