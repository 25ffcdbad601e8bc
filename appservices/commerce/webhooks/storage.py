"""Webhook rows: each shop's endpoint and the deliveries to it (every SQL statement of
the webhooks feature)."""

from __future__ import annotations

import json
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
