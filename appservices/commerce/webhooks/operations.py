"""What a shop does with its webhook: set the endpoint, rotate its secret, remove it, read
the delivery log and resend an event. Owners only (`manage_webhooks`); every change is
written with its audit entry in one transaction."""

from __future__ import annotations

from typing import Any

from appservices.commerce.errors import InvalidInput, NotFound
from appservices.commerce.shops import operations as merchants
from appservices.commerce.shops import storage as shop_rows
from appservices.commerce.shops.operations import Principal
from appservices.commerce.shops.roles import Action
from appservices.commerce.webhooks import rules, storage
from mercato.db import Database, transaction
from mercato.matrix.retrying import now_ms


def endpoint_view(endpoint: storage.Endpoint, secret: str | None = None) -> dict[str, Any]:
    """The endpoint as the shop sees it; the secret only when it was just made."""
    view: dict[str, Any] = {"url": endpoint.url, "events": endpoint.events,
                            "created_at": endpoint.created_at,
                            "updated_at": endpoint.updated_at}
    if secret is not None:
        view["secret"] = secret
    return view


def _no_webhook(slug: str) -> NotFound:
    return NotFound(f"The shop '{slug}' has no webhook; set one with PUT "
                    f"/api/v1/shops/{slug}/webhook.")


async def set_endpoint(db: Database, principal: Principal, slug: str,
                       body: Any) -> dict[str, Any]:
    """Set where the shop's events go. A new endpoint gets a secret,
    shown this once; changing the address keeps the secret."""
    await merchants.require(db, principal, slug, Action.MANAGE_WEBHOOKS)
    if not isinstance(body, dict):
        raise InvalidInput("body", 'must be an object such as {"url": "https://…"}')
    unknown = sorted(set(body) - {"url", "events"})
    if unknown:
        raise InvalidInput(unknown[0], "is not a webhook setting; send url and events")
    url, events = rules.endpoint_url(body.get("url")), rules.event_types(body.get("events"))
    now = now_ms()
    async with transaction(db) as conn:
        existing = await storage.get_endpoint(conn, slug)
        secret = None
        if existing is None:
            secret = rules.new_secret()
            await storage.insert_endpoint(conn, slug, url, secret, events, now)
        else:
            await storage.update_endpoint(conn, slug, url, events, now)
        await shop_rows.audit(conn, slug, principal.actor, "webhook_set", url=url,
                              events=events)
        endpoint = await storage.get_endpoint(conn, slug)
    assert endpoint is not None  # written just above, in the same transaction
    return endpoint_view(endpoint, secret)


async def get_endpoint(db: Database, principal: Principal, slug: str) -> dict[str, Any]:
    await merchants.require(db, principal, slug, Action.MANAGE_WEBHOOKS)
    endpoint = await storage.get_endpoint(db, slug)
    if endpoint is None:
        raise _no_webhook(slug)
    return endpoint_view(endpoint)


async def rotate_secret(db: Database, principal: Principal, slug: str) -> dict[str, Any]:
    """A new secret, shown this once; deliveries are signed with it from now on."""
    await merchants.require(db, principal, slug, Action.MANAGE_WEBHOOKS)
    secret = rules.new_secret()
    async with transaction(db) as conn:
        if await storage.get_endpoint(conn, slug) is None:
            raise _no_webhook(slug)
        await storage.set_secret(conn, slug, secret, now_ms())
        await shop_rows.audit(conn, slug, principal.actor, "webhook_secret_rotated")
        endpoint = await storage.get_endpoint(conn, slug)
    assert endpoint is not None
    return endpoint_view(endpoint, secret)


async def remove_endpoint(db: Database, principal: Principal, slug: str) -> dict[str, Any]:
    """No more events for the shop's back-end; deliveries still waiting are cancelled."""
    await merchants.require(db, principal, slug, Action.MANAGE_WEBHOOKS)
    async with transaction(db) as conn:
        endpoint = await storage.get_endpoint(conn, slug)
        if endpoint is None:
            raise _no_webhook(slug)
        await storage.delete_endpoint(conn, endpoint.id)
        cancelled = await storage.cancel_pending(conn, endpoint.id,
                                                 "the shop removed its webhook")
        await shop_rows.audit(conn, slug, principal.actor, "webhook_removed",
                              url=endpoint.url, cancelled=cancelled)
    return {"cancelled": cancelled}


async def deliveries(db: Database, principal: Principal, slug: str, *, status: str | None,
                     before: int | None, limit: int) -> dict[str, Any]:
    """The delivery log, newest first."""
    await merchants.require(db, principal, slug, Action.MANAGE_WEBHOOKS)
    if status is not None and status not in rules.STATES:
        raise InvalidInput("status", f"must be one of: {', '.join(rules.STATES)}")
    rows = await storage.list_deliveries(db, slug, state=status, before=before, limit=limit)
    return {"deliveries": [rules.delivery_view(row) for row in rows]}


async def resend(db: Database, principal: Principal, slug: str, event_id: str
                 ) -> dict[str, Any]:
    """Queue an event again with its own ID (the receiver may have it already)."""
    await merchants.require(db, principal, slug, Action.MANAGE_WEBHOOKS)
    async with transaction(db) as conn:
        endpoint = await storage.get_endpoint(conn, slug)
        if endpoint is None:
            raise _no_webhook(slug)
        if not await storage.requeue(conn, slug, event_id, endpoint.id, now_ms()):
            raise NotFound(f"The shop '{slug}' has no webhook event '{event_id}'; see "
                           f"GET /api/v1/shops/{slug}/webhook/deliveries.")
        await shop_rows.audit(conn, slug, principal.actor, "webhook_resent",
                              event_id=event_id)
    return {"event_id": event_id, "status": "pending"}
