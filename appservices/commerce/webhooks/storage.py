"""Webhook rows: each shop's endpoint and the deliveries to it (every SQL statement of
the webhooks feature)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mercato.types import MerchantSlug


async def endpoints_for_event(db: Any, slug: MerchantSlug, event_type: str) -> list[int]:
    """IDs of the shop's endpoints that want events of this type."""
    rows = await db.fetch("SELECT id, events FROM webhook_endpoint WHERE merchant_slug=$1",
                          slug)
    return [int(row["id"]) for row in rows
            if row["events"] is None or event_type in json.loads(row["events"])]


async def insert_delivery(db: Any, *, event_id: str, endpoint_id: int, slug: MerchantSlug,
                          event_type: str, subject: str, body: str, now: int) -> None:
    await db.execute(
        "INSERT INTO webhook_delivery (event_id, endpoint_id, merchant_slug, event_type,"
        " subject, body, created_at, queued_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$7)",
        event_id, endpoint_id, slug, event_type, subject, body, now)


# -- endpoints ----------------------------------------------------------------------------

_ENDPOINT_COLUMNS = "id, merchant_slug, url, secret, events, created_at, updated_at"


@dataclass(frozen=True)
class Endpoint:
    id: int
    merchant_slug: str
    url: str
    secret: str
    events: list[str] | None
    created_at: int
    updated_at: int


def _endpoint(row: Any) -> Endpoint:
    data = {k: row[k] for k in row.keys()}
    data["events"] = None if data["events"] is None else json.loads(data["events"])
    return Endpoint(**data)


async def get_endpoint(db: Any, slug: str) -> Endpoint | None:
    row = await db.fetchrow(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoint WHERE merchant_slug=$1", slug)
    return _endpoint(row) if row else None


async def endpoint_by_id(db: Any, endpoint_id: int) -> Endpoint | None:
    row = await db.fetchrow(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoint WHERE id=$1",
                            endpoint_id)
    return _endpoint(row) if row else None


async def insert_endpoint(db: Any, slug: str, url: str, secret: str,
                          events: list[str] | None, now: int) -> None:
    await db.execute(
        "INSERT INTO webhook_endpoint (merchant_slug, url, secret, events, created_at,"
        " updated_at) VALUES ($1,$2,$3,$4,$5,$5)",
        slug, url, secret, None if events is None else json.dumps(events), now)


async def update_endpoint(db: Any, slug: str, url: str, events: list[str] | None,
                          now: int) -> None:
    await db.execute(
        "UPDATE webhook_endpoint SET url=$2, events=$3, updated_at=$4 WHERE merchant_slug=$1",
        slug, url, None if events is None else json.dumps(events), now)


async def set_secret(db: Any, slug: str, secret: str, now: int) -> None:
    await db.execute(
        "UPDATE webhook_endpoint SET secret=$2, updated_at=$3 WHERE merchant_slug=$1",
        slug, secret, now)


async def delete_endpoint(db: Any, endpoint_id: int) -> None:
    await db.execute("DELETE FROM webhook_endpoint WHERE id=$1", endpoint_id)


# -- deliveries ---------------------------------------------------------------------------

_DELIVERY_COLUMNS = ("id, event_id, endpoint_id, merchant_slug, event_type, subject, body,"
                     " state, attempts, next_attempt_at, last_status, last_error, created_at,"
                     " queued_at, first_try_at, delivered_at")


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: str
    endpoint_id: int
    merchant_slug: str
    event_type: str
    subject: str
    body: str
    state: str
    attempts: int
    next_attempt_at: int
    last_status: int | None
    last_error: str | None
    created_at: int
    queued_at: int
    first_try_at: int | None
    delivered_at: int | None

    @property
    def queue(self) -> str:
        return queue_name(self.endpoint_id, self.subject)


def queue_name(endpoint_id: int, subject: str) -> str:
    """One endpoint's deliveries about one subject go one after another."""
    return f"{endpoint_id}:{subject}"


def _delivery(row: Any) -> Delivery:
    return Delivery(**{k: row[k] for k in row.keys()})


async def due_queues(db: Any, now: int, limit: int) -> list[str]:
    """The queues whose first pending delivery is due (a queue waiting for a retry is left
    out, so it cannot crowd the others out of the read)."""
    rows = await db.fetch(
        "SELECT endpoint_id, subject FROM webhook_delivery d WHERE state='pending'"
        " AND next_attempt_at <= $1 AND NOT EXISTS (SELECT 1 FROM webhook_delivery e"
        " WHERE e.endpoint_id=d.endpoint_id AND e.subject=d.subject AND e.state='pending'"
        " AND e.id < d.id) ORDER BY id LIMIT $2", now, limit)
    return [queue_name(int(row["endpoint_id"]), row["subject"]) for row in rows]


async def first_pending(db: Any, endpoint_id: int, subject: str) -> Delivery | None:
    row = await db.fetchrow(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_delivery WHERE endpoint_id=$1 AND subject=$2"
        " AND state='pending' ORDER BY id LIMIT 1", endpoint_id, subject)
    return _delivery(row) if row else None


async def count_attempt(db: Any, delivery_id: int, attempts: int, now: int) -> None:
    await db.execute("UPDATE webhook_delivery SET attempts=$2,"
                     " first_try_at=COALESCE(first_try_at, $3) WHERE id=$1",
                     delivery_id, attempts, now)


async def mark_delivered(db: Any, delivery_id: int, status: int, now: int) -> None:
    await db.execute(
        "UPDATE webhook_delivery SET state='delivered', last_status=$2, last_error=NULL,"
        " delivered_at=$3 WHERE id=$1 AND state='pending'", delivery_id, status, now)


async def mark_failed(db: Any, delivery_id: int, *, status: int | None, error: str,
                      next_attempt_at: int, parked: bool) -> None:
    await db.execute(
        "UPDATE webhook_delivery SET last_status=$2, last_error=$3, next_attempt_at=$4,"
        " state=$5 WHERE id=$1 AND state='pending'", delivery_id, status, error[:2000],
        next_attempt_at, "failed" if parked else "pending")


async def cancel_pending(db: Any, endpoint_id: int, why: str) -> int:
    """Deliveries still waiting for an endpoint that is gone: never sent."""
    count = await db.fetchval(
        "SELECT COUNT(*) FROM webhook_delivery WHERE endpoint_id=$1 AND state='pending'",
        endpoint_id)
    await db.execute(
        "UPDATE webhook_delivery SET state='cancelled', last_error=$2"
        " WHERE endpoint_id=$1 AND state='pending'", endpoint_id, why)
    return int(count)


async def list_deliveries(db: Any, slug: str, *, state: str | None, before: int | None,
                          limit: int) -> list[Delivery]:
    """The shop's deliveries, newest first."""
    rows = await db.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_delivery WHERE merchant_slug=$1"
        " AND (CAST($2 AS TEXT) IS NULL OR state=$2)"
        " AND (CAST($3 AS BIGINT) IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        slug, state, before, limit)
    return [_delivery(row) for row in rows]


async def requeue(db: Any, slug: str, event_id: str, endpoint_id: int, now: int) -> int:
    """Queue an event of the shop again, to its endpoint now, as new: tries counted from
    zero and another day to arrive. Returns how many deliveries (0: no such event)."""
    count = await db.fetchval(
        "SELECT COUNT(*) FROM webhook_delivery WHERE merchant_slug=$1 AND event_id=$2",
        slug, event_id)
    await db.execute(
        "UPDATE webhook_delivery SET state='pending', attempts=0, next_attempt_at=0,"
        " last_error=NULL, queued_at=$4, first_try_at=NULL, delivered_at=NULL, endpoint_id=$3"
        " WHERE merchant_slug=$1 AND event_id=$2", slug, event_id, endpoint_id, now)
    return int(count)


async def prune(db: Any, older_than: int) -> None:
    """The log keeps what was settled (delivered, parked, cancelled) for a while."""
    await db.execute("DELETE FROM webhook_delivery WHERE state <> 'pending'"
                     " AND queued_at < $1", older_than)
