"""Webhooks: each shop's back-end hears of its events (orders) by signed HTTPS POSTs.

A feature records an event with `record_event` inside its own database transaction; the
delivery is a row from then on, sent by the webhook outbox (`outbox.py`) with retries for
24 hours, in order per subject (an order's events one after another).
"""

from appservices.commerce.webhooks.events import record_event

__all__ = ["record_event"]
