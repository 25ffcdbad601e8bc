"""Webhooks reach a shop's real back-end through its failures (issue 17): a receiver over
HTTPS that checks every signature answers 500 once, is down for a while, and answers one
delivery too late; every event still arrives, processed once, in order per order, and a
delivery that never gets through is given up after a day of tries (the outbox's clock is
moved, nothing sleeps a day). On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.webhooks import record_event, rules, storage
from appservices.commerce.webhooks.outbox import WebhookOutbox
from mercato.db import Database, open_database, transaction
from mercato.matrix.retrying import Backoff, now_ms
from mercato.types import MerchantSlug
from tests.integration.local_https import Certificate, self_signed_certificate
from tests.integration.webhook_receiver import WebhookReceiver

SHOP = MerchantSlug("corner")
SECRET = "whsec_reliability"
# The real schedule's shape, in milliseconds rather than seconds.
QUICK = Backoff(max_attempts=1000, first_ms=100, cap_ms=400, give_up_after_ms=rules.DAY_MS)


class Clock:
    """The outbox's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed_certificate(tmp_path, "backend")


@pytest.fixture
async def receiver(certificate: Certificate) -> AsyncIterator[WebhookReceiver]:
    running = await WebhookReceiver(certificate, SECRET).start()
    try:
        yield running
    finally:
        await running.stop()


async def record(db: Database, event_type: str, order: str, step: int) -> str:
    async with transaction(db) as conn:
        event_id = await record_event(conn, SHOP, event_type, order,
                                      {"order_id": order, "step": step})
    assert event_id is not None
    return event_id


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("mercato_webhook_deliveries_total",
                                     {"outcome": outcome}) or 0.0


async def test_every_event_arrives_once_in_order_through_500s_outages_and_timeouts(
        db: Database, receiver: WebhookReceiver, certificate: Certificate) -> None:
    await storage.insert_endpoint(db, SHOP, receiver.url, SECRET, None, now_ms())
    outbox = WebhookOutbox(db, ca_file=str(certificate.cert), backoff=QUICK, timeout=1.0)
    retries_before = counted("retry")
    receiver.fail_next = 1
    orders = ["o-1", "o-2", "o-3"]
    expected: dict[str, list[str]] = {order: [] for order in orders}
    for step, event_type in enumerate(["order.placed", "order.confirmed"]):
        for order in orders:
            expected[order].append(await record(db, event_type, order, step))
    # One answer comes after the outbox stopped waiting: processed, then sent again.
    receiver.late[expected["o-2"][1]] = 1.5
    outbox.start()
    try:
        await receiver.wait_for(6)
        await receiver.stop()  # the back-end goes down…
        for order in orders:
            expected[order].append(await record(db, "order.paid", order, 2))
        await asyncio.sleep(1.5)  # …its deliveries fail meanwhile…
        waiting = await storage.list_deliveries(db, SHOP, state="pending", before=None,
                                                limit=10)
        assert {ids[2] for ids in expected.values()} <= {d.event_id for d in waiting}
        assert any(d.attempts >= 1 and "could not connect to 127.0.0.1" in (d.last_error or "")
                   for d in waiting)
        await receiver.start()  # …and comes back
        await receiver.wait_for(9)
        await _all_settled(db)
    finally:
        await outbox.stop()

    assert receiver.bad_signatures == []
    assert sorted(receiver.processed_ids) == sorted(i for ids in expected.values() for i in ids)
    for order in orders:  # each order's events in the order they happened
        assert [b["id"] for b in receiver.processed if b["data"]["order_id"] == order] == \
            expected[order]
    # Repeats are tries of an event already sent (the 500, the late answer), nothing else.
    repeats = {i for i in receiver.arrivals if receiver.arrivals.count(i) > 1}
    assert expected["o-2"][1] in repeats
    log = {d.event_id: d for d in await storage.list_deliveries(
        db, SHOP, state=None, before=None, limit=100)}
    assert all(d.state == "delivered" and d.last_status == 200 for d in log.values())
    assert log[expected["o-2"][1]].attempts >= 2
    assert counted("retry") - retries_before >= 3


async def _all_settled(db: Database) -> None:
    for _ in range(100):
        if not await storage.list_deliveries(db, SHOP, state="pending", before=None, limit=1):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("deliveries still pending")


async def test_a_delivery_failing_for_a_day_is_parked_and_the_next_of_its_order_follows(
        db: Database, receiver: WebhookReceiver, certificate: Certificate) -> None:
    await storage.insert_endpoint(db, SHOP, receiver.url, SECRET, None, now_ms())
    clock = Clock()
    outbox = WebhookOutbox(db, ca_file=str(certificate.cert), clock=clock)
    parked_before = counted("failed")
    await receiver.stop()
    first = await record(db, "order.placed", "o-9", 0)
    second = await record(db, "order.cancelled", "o-9", 1)
    elsewhere = await record(db, "order.placed", "o-10", 0)
    tries: list[int] = []
    try:
        while True:
            await outbox.worker.run_pass()
            await outbox.worker.idle()
            (row,) = [d for d in await storage.list_deliveries(
                db, SHOP, state=None, before=None, limit=10) if d.event_id == first]
            if row.state != "pending":
                break
            if not tries or row.attempts > tries[-1]:
                tries.append(row.attempts)
                # Waits as the schedule says, from the moment of the failed try.
                assert row.next_attempt_at - clock.now == rules.BACKOFF.delay_ms(row.attempts)
            later = {d.event_id: d for d in await storage.list_deliveries(
                db, SHOP, state=None, before=None, limit=10)}
            assert later[second].attempts == 0  # waits for the order's earlier event
            clock.now = row.next_attempt_at
        assert row.state == "failed" and "could not connect" in (row.last_error or "")
        assert row.first_try_at is not None and clock.now - row.first_try_at >= rules.DAY_MS
        assert 30 <= row.attempts <= 36
        assert counted("failed") - parked_before >= 2  # o-9's first, and o-10's
        # The order's next event was tried at once, and has a day of its own.
        later = {d.event_id: d for d in await storage.list_deliveries(
            db, SHOP, state=None, before=None, limit=10)}
        assert later[second].state == "pending" and later[second].attempts == 1
        # The back-end is back: that event arrives at its retry; the parked one does not.
        await receiver.start()
        receiver.clock = lambda: clock.now // 1000  # it lived through the same day
        clock.now = later[second].next_attempt_at
        await outbox.worker.run_pass()
        await outbox.worker.idle()
        assert receiver.processed_ids == [second]
    finally:
        await outbox.stop()
    log = {d.event_id: d.state for d in await storage.list_deliveries(
        db, SHOP, state=None, before=None, limit=10)}
    assert log == {first: "failed", second: "delivered", elsewhere: "failed"}


async def test_no_endpoint_no_event_and_a_type_filter_is_kept(db: Database) -> None:
    async with transaction(db) as conn:
        assert await record_event(conn, SHOP, "order.placed", "o-1", {}) is None
    await storage.insert_endpoint(db, SHOP, "https://shop.example/hooks", SECRET,
                                  ["order.paid"], now_ms())
    async with transaction(db) as conn:
        assert await record_event(conn, SHOP, "order.placed", "o-1", {}) is None
        paid = await record_event(conn, SHOP, "order.paid", "o-1", {})
    assert [d.event_id for d in await storage.list_deliveries(
        db, SHOP, state=None, before=None, limit=10)] == [paid]


async def test_an_event_recorded_in_a_transaction_that_fails_is_never_sent(
        db: Database) -> None:
    await storage.insert_endpoint(db, SHOP, "https://shop.example/hooks", SECRET, None,
                                  now_ms())
    with pytest.raises(RuntimeError):
        async with transaction(db) as conn:
            await record_event(conn, SHOP, "order.placed", "o-1", {})
            raise RuntimeError("the order could not be placed")
    assert await storage.list_deliveries(db, SHOP, state=None, before=None, limit=10) == []
