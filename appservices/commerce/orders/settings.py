"""Each shop's order settings: the payment methods and delivery kinds it offers, and
what a buyer may choose at its checkout. The HTTP routes, the chat checkout and placing
an order read them through here."""

from __future__ import annotations

from typing import Any

from appservices.commerce import links
from appservices.commerce.errors import InvalidInput
from appservices.commerce.orders import payments, rules
from appservices.commerce.orders import storage as rows
from appservices.commerce.orders.carts import open_shop
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, require
from appservices.commerce.shops.roles import Action
from mercato.db import Database, transaction

DEFAULT_SETTINGS: dict[str, Any] = {
    "payment_methods": {"on_delivery": {}, "pickup": {}},
    "delivery": rules.DEFAULT_DELIVERY,
}


async def settings_of(db: Any, slug: str) -> dict[str, Any]:
    """The shop's settings (the defaults until its owner sets them); `db` may be the
    connection of the caller's transaction."""
    return await rows.get_settings(db, slug) or DEFAULT_SETTINGS


async def get_settings(db: Database, principal: Principal, slug: str) -> dict[str, Any]:
    await require(db, principal, slug, Action.MANAGE_ORDERS)
    return await settings_of(db, slug)


async def put_settings(db: Database, mercato_hosts: tuple[str, ...], principal: Principal,
                       slug: str, body: Any) -> dict[str, Any]:
    """`{"payment_methods": {"bank_transfer": {"details": …}, …}, "delivery": [...]}`"""
    merchant = await require(db, principal, slug, Action.EDIT_SHOP)
    if not isinstance(body, dict):
        raise InvalidInput("body", 'send {"payment_methods": {…}, "delivery": [...]}')
    policy = links.policy_for(merchant, mercato_hosts)
    current = await settings_of(db, slug)
    settings = {
        "payment_methods": payments.check_methods(body["payment_methods"], policy)
        if "payment_methods" in body else current["payment_methods"],
        "delivery": rules.validate_delivery_kinds(body["delivery"])
        if "delivery" in body else current["delivery"],
    }
    async with transaction(db) as conn:
        await rows.put_settings(conn, slug, settings)
        await store.audit(conn, slug, principal.actor, "order_settings_set",
                          methods=sorted(settings["payment_methods"]))
    return settings


async def checkout_options(db: Database, slug: str) -> dict[str, Any]:
    """What a buyer may choose at this shop's checkout (the chat dialog asks these)."""
    merchant = await open_shop(db, slug)
    settings = await settings_of(db, merchant.slug)
    return {"shop": merchant.slug, "delivery": settings["delivery"],
            "payment_methods": payments.public_view(settings["payment_methods"])}
