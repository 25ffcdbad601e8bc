"""Recording a webhook event: what a feature calls, inside its own transaction.

The event becomes one delivery row per endpoint of the shop that wants its type, with
the exact body every try will POST, so an order and its event are written together or
not at all, and a crash after the commit still delivers it.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from appservices.commerce.webhooks import storage
from mercato.db import Connection
from mercato.logging import get_logger
from mercato.matrix.retrying import now_ms
from mercato.types import MerchantSlug

log = get_logger(__name__)

EVENT_ID_PREFIX = "evt_"


def new_event_id() -> str:
    return EVENT_ID_PREFIX + secrets.token_hex(12)


def event_body(event_id: str, slug: MerchantSlug, event_type: str, created_ms: int,
               payload: dict[str, Any]) -> str:
    """The JSON a receiver gets: the event's ID (for its idempotency), type, time
    (Unix seconds), the shop and the event's data."""
    return json.dumps({"id": event_id, "type": event_type, "created": created_ms // 1000,
                       "shop": slug, "data": payload}, ensure_ascii=False,
                      separators=(",", ":"), sort_keys=True)


async def record_event(conn: Connection, slug: MerchantSlug, event_type: str, subject: str,
                       payload: dict[str, Any]) -> str | None:
    """Record an event of the shop for its webhook endpoint, in the caller's transaction.

    `subject` orders deliveries (an order's ID: its events arrive one after another).
    Returns the event ID, or None when the shop has no endpoint that wants this type.
    """
    endpoints = await storage.endpoints_for_event(conn, slug, event_type)
    if not endpoints:
        return None
    event_id = new_event_id()
    created = now_ms()
    body = event_body(event_id, slug, event_type, created, payload)
    for endpoint_id in endpoints:
        await storage.insert_delivery(conn, event_id=event_id, endpoint_id=endpoint_id,
                                      slug=slug, event_type=event_type, subject=subject,
                                      body=body, now=created)
    log.info("webhook.event_recorded", shop=slug, event_id=event_id, type=event_type,
             subject=subject)
    return event_id
