"""Webhook rules without I/O: a valid endpoint, a new secret, when a failed delivery is
tried again, and how a delivery is shown to its shop."""

from __future__ import annotations

import re
import secrets
from typing import Any

from appservices.commerce.errors import InvalidInput
from appservices.commerce.links import clean_https_url
from mercato.matrix.retrying import Backoff

SECRET_PREFIX = "whsec_"
TIMEOUT_SECONDS = 10.0
DAY_MS = 24 * 3600 * 1000
# 10 s, 20 s, 40 s … then hourly; the first failure a day after the delivery's first try
# parks it (about 33 tries). max_attempts is only a backstop.
BACKOFF = Backoff(max_attempts=1000, first_ms=10_000, cap_ms=3600_000,
                  give_up_after_ms=DAY_MS)
STATES = ("pending", "delivered", "failed", "cancelled")
MAX_EVENT_TYPES = 50
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class InvalidWebhook(InvalidInput):
    """A webhook setting the shop must change: 422, the request was understood but its
    value cannot be used."""

    status = 422


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def endpoint_url(value: Any) -> str:
    """The endpoint's address: one clean https:// URL."""
    try:
        url = clean_https_url("url", value)
    except InvalidInput as e:
        raise InvalidWebhook("url", e.reason) from None
    if not url:
        raise InvalidWebhook("url", "is required: the https:// address your back-end receives "
                                    "events at")
    return url


def event_types(value: Any) -> list[str] | None:
    """The event types the endpoint wants; None (or absent) for every type."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_EVENT_TYPES:
        raise InvalidWebhook("events", f"must be a list of 1 to {MAX_EVENT_TYPES} event types "
                                       "such as \"order.placed\", or left out for all events")
    for item in value:
        if not isinstance(item, str) or not _EVENT_TYPE.match(item):
            raise InvalidWebhook("events", f"has {item!r}, which is not an event type such as "
                                           "\"order.placed\"")
    return sorted(set(value))


def delivery_view(delivery: Any) -> dict[str, Any]:
    """One line of the shop's delivery log (a `storage.Delivery`)."""
    pending = delivery.state == "pending"
    return {"id": delivery.id, "event_id": delivery.event_id, "type": delivery.event_type,
            "subject": delivery.subject, "status": delivery.state,
            "attempts": delivery.attempts, "last_status_code": delivery.last_status,
            "last_error": delivery.last_error, "created_at": delivery.created_at,
            "delivered_at": delivery.delivered_at,
            "next_attempt_at": delivery.next_attempt_at if pending else None}
