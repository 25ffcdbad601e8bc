"""The transaction inbox: every appservice transaction is stored before Synapse gets 200.

Synapse retries a failed transaction with the same txnId and keeps only one in
flight, so persisting first and answering second means a crash never loses an
event. Dedupe is by txnId and by event ID (the same event can arrive in two
transactions after a retry). Events of one queue are handled in order; queues
are handled concurrently. A queue is a room by default (`queue_of`); a component
may give some events a queue of their own (`Inbox(queue_of=…)`: the commerce
appservice's 🎟️ claims, one queue per room and sender). A handler that keeps
failing is retried with backoff and finally parked as failed, so one poisoned
event cannot block a room forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from mercato.db import (
    Connection,
    Database,
    OutageLog,
    Scheme,
    UpgradeTable,
    database_unavailable,
    durable_transaction,
    register_upgrade,
)
from mercato.faults import fault_pause, fault_point
from mercato.logging import get_logger
from mercato.matrix import sending
from mercato.matrix.retrying import Backoff, by_queue, now_ms

log = get_logger(__name__)

BACKOFF = Backoff(max_attempts=6)  # 1 s, 2 s, 4 s … capped at 60 s
MAX_ATTEMPTS = BACKOFF.max_attempts
RETENTION_SECONDS = 7 * 24 * 3600
STOP_GRACE_SECONDS = 10.0
PASS_LIMIT = 500  # events read at a time
DEEP_READ_INTERVAL_MS = 1000  # the most often a pass reads past rooms that cannot start
# Rooms left out of a pass's read by name (more would make a long statement; the rest
# only take up room in the pass, as all did before rooms were left out).
MAX_SKIPPED_ROOMS = 1000

TRANSACTIONS = Counter("mercato_as_transactions_total", "Appservice transactions received",
                       ["component", "outcome"])
EVENTS = Counter("mercato_as_events_total", "Appservice events by outcome",
                 ["component", "outcome"])
PENDING = Gauge("mercato_as_inbox_pending", "Events stored but not handled yet", ["component"])

upgrade_table = UpgradeTable(version_table_name="mercato_inbox_version",
                             database_name="appservice inbox")


@register_upgrade(upgrade_table, "Transaction inbox")
async def _create_inbox(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    await conn.execute("""
        CREATE TABLE as_transaction (
            txn_id      TEXT PRIMARY KEY,
            received_at BIGINT NOT NULL,
            event_count INTEGER NOT NULL
        )
    """)
    await conn.execute(f"""
        CREATE TABLE as_inbox (
            seq             {serial},
            txn_id          TEXT NOT NULL,
            event_id        TEXT UNIQUE,
            room_id         TEXT NOT NULL,
            event_json      TEXT NOT NULL,
            received_at     BIGINT NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL DEFAULT 0,
            handled_at      BIGINT,
            failed          BOOLEAN NOT NULL DEFAULT false,
            last_error      TEXT
        )
    """)
    await conn.execute("CREATE INDEX as_inbox_pending ON as_inbox (handled_at, seq)")


@register_upgrade(upgrade_table, "Fingerprint of each transaction's content")
async def _transaction_digest(conn: Connection, scheme: Scheme) -> None:
    # Synapse on SQLite numbers appservice transactions from 1 again after a restart
    # (its counter is the highest *pending* txnId): a seen txnId alone is not a retry.
    await conn.execute("ALTER TABLE as_transaction ADD COLUMN digest TEXT")


def transaction_digest(events: list[dict[str, Any]]) -> str:
    """What identifies a transaction's content across Synapse's retries.

    A retry carries the same room events (their `unsigned.age` may differ, so the event
    IDs are what counts) and none of the first attempt's receipts or typing events.
    """
    event_ids = [e["event_id"] for e in events if isinstance(e.get("event_id"), str)]
    if event_ids:
        material = "\n".join(event_ids)
    else:
        material = json.dumps(events, sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


def queue_of(event: dict[str, Any]) -> str | None:
    """Which queue an event waits in, in order: its room's; a presence update (it has no
    room) its sender's. The `room_id` column holds the queue's name."""
    room_id = event.get("room_id")
    if isinstance(room_id, str):
        return room_id
    sender = event.get("sender")
    if event.get("type") == "m.presence" and isinstance(sender, str):
        return f"presence {sender}"
    return None


def retry_delay_ms(attempts: int) -> int:
    """Backoff after the given number of failed attempts: 1 s, 2 s, 4 s … capped at 60 s."""
    return BACKOFF.delay_ms(attempts)


@dataclass(frozen=True)
class InboxEvent:
    seq: int
    event_id: str | None
    room_id: str
    event: dict[str, Any]
    attempts: int
    next_attempt_at: int


EventHandler = Callable[[dict[str, Any]], Awaitable[None]]


class Inbox:
    def __init__(self, db: Database, component: str, intake: Database | None = None,
                 queue_of: Callable[[dict[str, Any]], str | None] = queue_of) -> None:
        self.db = db
        self.queue_of = queue_of  # which queue an event waits in, decided when it is stored
        # Where transactions are stored: on SQLite a connection of its own, so that an
        # arriving transaction does not queue behind the handlers' statements.
        self.intake = intake or db
        self.component = component
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rooms: dict[str, asyncio.Task[bool]] = {}  # rooms being worked on
        self._retrying: dict[str, int] = {}  # rooms whose first event waits: when it is due
        self._stopping = False
        self._last_prune = 0.0
        self._outage = OutageLog(log, "inbox", component=component)
        self._deep_read_at = 0.0  # when a pass last read past the rooms that cannot start
        self._storing = 0  # transactions being stored now
        self._intake_clear = asyncio.Event()  # set while none is
        self._intake_clear.set()

    async def store_transaction(self, txn_id: str, events: list[dict[str, Any]]) -> bool:
        """Persist a transaction's events in one database transaction.

        Returns False for a retry: the txnId was seen before with the same events, and
        nothing is written then. The same txnId with other events is a new transaction
        (Synapse reuses txnIds after a restart on SQLite); its events are stored, each
        event ID still at most once.

        While a transaction is being stored, room tasks start no new event: Synapse
        waits for this answer before it sends anything else, and the handlers' writes
        would compete with it for the database.
        """
        self._storing += 1
        self._intake_clear.clear()
        try:
            return await self._store(txn_id, events)
        finally:
            self._storing -= 1
            if not self._storing:
                self._intake_clear.set()

    async def _store(self, txn_id: str, events: list[dict[str, Any]]) -> bool:
        now = now_ms()
        digest = transaction_digest(events)
        # Durable on SQLite even against a power cut: Synapse is told it is stored.
        async with durable_transaction(self.intake) as conn:
            # Write first: SQLite waits out another writer's lock (busy_timeout) only for
            # a transaction that has not read yet; a read-then-write one fails at once.
            new = await conn.fetchval(
                "INSERT INTO as_transaction (txn_id, received_at, event_count, digest)"
                " VALUES ($1,$2,$3,$4) ON CONFLICT (txn_id) DO NOTHING RETURNING txn_id",
                txn_id, now, len(events), digest)
            if new is None:
                seen = await conn.fetchval(
                    "SELECT digest FROM as_transaction WHERE txn_id=$1", txn_id)
                if seen is None or seen == digest:
                    TRANSACTIONS.labels(self.component, "duplicate").inc()
                    return False
                log.warning("inbox.txn_id_reused", component=self.component, txn_id=txn_id,
                            events=len(events))
                await conn.execute(
                    "UPDATE as_transaction SET received_at=$1, event_count=$2, digest=$3"
                    " WHERE txn_id=$4", now, len(events), digest, txn_id)
            rows = []
            for event in events:
                room_id = self.queue_of(event)
                if room_id is None:
                    continue  # not a room event, nor one we queue otherwise
                event_id = event.get("event_id")
                rows.append((txn_id, event_id if isinstance(event_id, str) else None, room_id,
                             json.dumps(event), now))
            if rows:
                # One statement for the whole transaction: intake cost stays flat per event.
                await conn.executemany(
                    "INSERT INTO as_inbox (txn_id, event_id, room_id, event_json, received_at)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING", rows)
        fault_point("inbox.after_store")  # stored, not yet answered nor handled
        TRANSACTIONS.labels(self.component, "stored").inc()
        self._wakeup.set()
        return True

    async def pending(self, limit: int = PASS_LIMIT,
                      skip_rooms: Collection[str] = ()) -> list[InboxEvent]:
        """The oldest unhandled events, but none of `skip_rooms` (whose events cannot
        start now: a room being worked on, or waiting for a retry)."""
        skip = sorted(skip_rooms)[:MAX_SKIPPED_ROOMS]
        not_in = (f" AND room_id NOT IN ({', '.join(f'${n + 2}' for n in range(len(skip)))})"
                  if skip else "")
        rows = await self.db.fetch(
            "SELECT seq, event_id, room_id, event_json, attempts, next_attempt_at FROM as_inbox"
            f" WHERE handled_at IS NULL{not_in} ORDER BY seq LIMIT $1", limit, *skip)
        return [InboxEvent(seq=row["seq"], event_id=row["event_id"], room_id=row["room_id"],
                           event=json.loads(row["event_json"]), attempts=row["attempts"],
                           next_attempt_at=row["next_attempt_at"]) for row in rows]

    async def count_pending(self) -> int:
        return await self.db.fetchval("SELECT COUNT(*) FROM as_inbox WHERE handled_at IS NULL")

    def _starts_next(self, items: list[InboxEvent], index: int) -> InboxEvent | None:
        """The room's next event if it is to be tried right after this one."""
        if index + 1 >= len(items) or self._stopping:
            return None
        following = items[index + 1]
        if following.next_attempt_at > now_ms() or following.attempts >= MAX_ATTEMPTS:
            return None
        return following

    async def _mark_handled(self, seq: int, following: InboxEvent | None = None) -> None:
        """Mark the event handled; and, in the same statement (one write instead of two
        per event), record the try of the room's next event, which starts now."""
        if following is None:
            await self.db.execute("UPDATE as_inbox SET handled_at=$1 WHERE seq=$2",
                                  now_ms(), seq)
            return
        await self.db.execute(
            "UPDATE as_inbox SET handled_at = CASE WHEN seq=$1 THEN $2 ELSE handled_at END,"
            " attempts = CASE WHEN seq=$3 THEN $4 ELSE attempts END WHERE seq IN ($1, $3)",
            seq, now_ms(), following.seq, following.attempts + 1)

    async def _mark_failed_attempt(self, item: InboxEvent, error: str) -> bool:
        """Record a failure; returns True when the event is parked for good."""
        attempts = item.attempts + 1
        parked = BACKOFF.parks(attempts)
        await self.db.execute(
            "UPDATE as_inbox SET attempts=$1, next_attempt_at=$2, last_error=$3,"
            " failed=$4, handled_at=$5 WHERE seq=$6",
            attempts, BACKOFF.next_try_at(attempts), error[:2000], parked,
            now_ms() if parked else None, item.seq)
        return parked

    async def _park(self, item: InboxEvent, error: str) -> None:
        await self.db.execute(
            "UPDATE as_inbox SET last_error=$1, failed=$2, handled_at=$3 WHERE seq=$4",
            error, True, now_ms(), item.seq)
        log.error("inbox.parked", component=self.component, event_id=item.event_id,
                  room_id=item.room_id, error=error)
        EVENTS.labels(self.component, "parked").inc()

    async def _drain_room(self, items: list[InboxEvent], handler: EventHandler) -> bool:
        """Handle one room's pending events in order; stop at the first not due yet."""
        progressed = False
        on_record = None  # the event whose try was recorded with the previous one's end
        for index, item in enumerate(items):
            await self._intake_clear.wait()  # a transaction being stored goes first
            if self._stopping:
                break  # stopping: finish the event in hand, start no other
            if item.next_attempt_at > now_ms():
                break
            fault_point("inbox.before_handle")  # stored and acknowledged, not handled yet
            if item.attempts >= MAX_ATTEMPTS:
                # Every earlier try ended with the process (a crash, a kill): stop trying.
                await self._park(item, f"not finished in {item.attempts} tries: the process "
                                       "stopped during each of them")
                progressed = True
                continue
            # The try is on record before it starts, so one cut short by a crash counts too.
            if on_record != item.seq:
                await self.db.execute("UPDATE as_inbox SET attempts=$1 WHERE seq=$2",
                                      item.attempts + 1, item.seq)
            await fault_pause("inbox.slow_handle")  # a handler that runs long
            # A retried event may have sent part of its messages: sends look before posting.
            replay = sending.replaying.set(item.attempts > 0)
            try:
                await handler(item.event)
            except Exception as e:
                if database_unavailable(e):
                    raise  # not the event's fault: the room waits for the database (`run`)
                parked = await self._mark_failed_attempt(item, f"{type(e).__name__}: {e}")
                log.exception("inbox.handler_failed", component=self.component,
                              event_id=item.event_id, room_id=item.room_id,
                              attempt=item.attempts + 1, parked=parked)
                EVENTS.labels(self.component, "parked" if parked else "retry").inc()
                if not parked:
                    break  # keep the room's order: later events wait for this one
                progressed = True
                continue
            finally:
                sending.replaying.reset(replay)
            # handled, not yet marked handled
            fault_point("inbox.after_handle", item.event.get("type"))
            following = self._starts_next(items, index)
            await self._mark_handled(item.seq, following)
            on_record = following.seq if following else None
            EVENTS.labels(self.component, "handled").inc()
            progressed = True
        return progressed

    async def process_once(self, handler: EventHandler) -> tuple[bool, int | None]:
        """One pass over pending events. Returns (progressed, earliest retry time)."""
        items = await self.pending()
        PENDING.labels(self.component).set(len(items))
        by_room = by_queue(items, lambda item: item.room_id)
        results = await asyncio.gather(
            *(self._drain_room(room_items, handler) for room_items in by_room.values()))
        # Read after the pass: failures in this pass scheduled their retries just now.
        next_retry = await self.db.fetchval(
            "SELECT MIN(next_attempt_at) FROM as_inbox WHERE handled_at IS NULL"
            " AND next_attempt_at > $1", now_ms())
        return any(results), next_retry

    async def prune(self) -> None:
        cutoff = now_ms() - RETENTION_SECONDS * 1000
        await self.db.execute("DELETE FROM as_inbox WHERE handled_at IS NOT NULL "
                              "AND handled_at < $1", cutoff)
        await self.db.execute("DELETE FROM as_transaction WHERE received_at < $1", cutoff)

    async def run(self, handler: EventHandler) -> None:
        """Give each room with due events a task of its own: a slow handler (a minute, say)
        holds up its own room only, and a room's events stay in order."""
        while True:
            self._wakeup.clear()
            try:
                if self._reap_rooms():
                    next_retry: int | None = now_ms() + 2000  # the database failed a room
                else:
                    next_retry = await self._start_rooms(handler)
                    if time.monotonic() - self._last_prune > 3600:
                        self._last_prune = time.monotonic()
                        await self.prune()
                    self._outage.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # The database itself failed; wait a moment and try again.
                if not self._outage.failed(e):
                    log.exception("inbox.pass_failed", component=self.component)
                next_retry = now_ms() + 2000
            timeout = 30.0 if next_retry is None else max(0.05, (next_retry - now_ms()) / 1000)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                pass

    def _reap_rooms(self) -> bool:
        """Forget the rooms whose task ended; True if one ended in an error (a handler's
        errors are caught in `_drain_room`, so this is the database failing)."""
        failed = False
        for room_id, task in list(self._rooms.items()):
            if not task.done():
                continue
            del self._rooms[room_id]
            if not task.cancelled() and (error := task.exception()) is not None:
                if not self._outage.failed(error):
                    log.error("inbox.room_failed", component=self.component, room_id=room_id,
                              error=f"{type(error).__name__}: {error}")
                failed = True
        return failed

    async def _start_rooms(self, handler: EventHandler) -> int | None:
        """Start a task for each room with a due event and none running; returns the
        earliest retry time of the events that wait."""
        now = now_ms()
        self._retrying = {room: due for room, due in self._retrying.items() if due > now}
        items = await self.pending()  # the oldest events, whatever their room
        started = self._start_tasks(items, handler, now)
        come_back: int | None = None
        if len(items) >= PASS_LIMIT:
            # A full read may hide rooms: when one room that cannot start now (being worked
            # on, or waiting for a retry) holds hundreds of events, the oldest events are
            # all its. Then read again without such rooms — at most once a second, since
            # that read passes over their events — and come back in a second to see.
            come_back = now + DEEP_READ_INTERVAL_MS
            if not started and time.monotonic() - self._deep_read_at >= \
                    DEEP_READ_INTERVAL_MS / 1000:
                self._deep_read_at = time.monotonic()
                items = await self.pending(
                    skip_rooms=self._rooms.keys() | self._retrying.keys())
                self._start_tasks(items, handler, now)
        PENDING.labels(self.component).set(len(items))
        retry = await self.db.fetchval(
            "SELECT MIN(next_attempt_at) FROM as_inbox WHERE handled_at IS NULL"
            " AND next_attempt_at > $1", now)
        return min((t for t in (retry, come_back) if t is not None), default=None)

    def _start_tasks(self, items: list[InboxEvent], handler: EventHandler, now: int) -> int:
        """A task for each room of `items` that has none and whose first event is due;
        returns how many were started."""
        by_room = by_queue((item for item in items if item.room_id not in self._rooms),
                           lambda item: item.room_id)
        started = 0
        for room_id, room_items in by_room.items():
            if room_items[0].next_attempt_at > now:
                self._retrying[room_id] = room_items[0].next_attempt_at
                continue
            task = asyncio.create_task(self._drain_room(room_items, handler),
                                       name=f"inbox-{self.component}-room")
            task.add_done_callback(lambda _: self._wakeup.set())  # its room may have more
            self._rooms[room_id] = task
            started += 1
        return started

    def start(self, handler: EventHandler) -> None:
        self._task = asyncio.create_task(self.run(handler), name=f"inbox-{self.component}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        # Handlers in progress may finish (a restart then repeats nothing); one still running
        # after the grace period is cut off, not marked handled, and handled again at start.
        self._stopping = True
        rooms = list(self._rooms.values())
        if rooms:
            await asyncio.wait(rooms, timeout=STOP_GRACE_SECONDS)
        for task in rooms:
            task.cancel()
        await asyncio.gather(*rooms, return_exceptions=True)
        self._rooms.clear()
        self._stopping = False
