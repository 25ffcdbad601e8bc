"""Reading orders: one order or a page of them for the buyer and for the shop's staff,
the order as the API answers it, the paging cursor, and the shop's order numbers for its
stats.

A page of orders goes newest first; its `next` cursor names the last order shown (its
created_at and ID), so the next page starts right after it even when several orders were
placed in the same millisecond. The cursor is opaque to callers: they pass it back.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from appservices.commerce.errors import InvalidInput, NotFound
from appservices.commerce.orders import rules
from appservices.commerce.orders import storage as rows
from appservices.commerce.orders.rules import Order, Status
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, require
from appservices.commerce.shops.roles import Action
from mercato.db import Database

MAX_LIST = 200


@dataclass(frozen=True)
class Page:
    """Which page of orders: at most `limit`, after the cursor's order or older than
    `before` (a created_at, the older way to page)."""

    limit: int = 50
    cursor: str | None = None
    before: int | None = None


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    next: str | None  # the cursor of the page after this one; None on the last page


def cursor_of(order: Order) -> str:
    raw = f"{order.created_at}.{order.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(value: str) -> tuple[int, str]:
    """(created_at, order ID) from a cursor a page answered."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        created_at, order_id = raw.split(".", 1)
        if rules.ORDER_ID.match(order_id):
            return int(created_at), order_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise InvalidInput("cursor", "is not one a page of orders gave; pass the `next` value of "
                                 "the page before, or leave it out for the newest orders")


async def _page(found: Any, page: Page) -> OrderPage:
    """One more order than the page holds is read, to know whether another page follows."""
    orders = list(await found(min(page.limit, MAX_LIST) + 1,
                              parse_cursor(page.cursor) if page.cursor else None, page.before))
    more = len(orders) > min(page.limit, MAX_LIST)
    orders = orders[:min(page.limit, MAX_LIST)]
    return OrderPage(orders, cursor_of(orders[-1]) if more and orders else None)


async def order_of_shop(db: Database, merchant: store.Merchant, order_id: str) -> Order:
    """The shop's order, for callers that checked the permission already."""
    order = await rows.get_order(db, rules.clean_order_id(order_id))
    if order is None or order.merchant_slug != merchant.slug:
        raise NotFound(f"{merchant.name} has no order {order_id}.")
    return order


async def order_of_buyer(db: Database, buyer_id: str, order_id: str) -> Order:
    order = await rows.get_order(db, rules.clean_order_id(order_id))
    if order is None or order.buyer_id != buyer_id:
        raise NotFound(f"You have no order {order_id}.")
    return order


async def shop_order(db: Database, principal: Principal, slug: str, order_id: str) -> Order:
    merchant = await require(db, principal, slug, Action.MANAGE_ORDERS)
    return await order_of_shop(db, merchant, order_id)


async def shop_orders(db: Database, principal: Principal, slug: str, status: str | None,
                      page: Page) -> OrderPage:
    await require(db, principal, slug, Action.MANAGE_ORDERS)
    if status is not None and status not in {s.value for s in Status}:
        raise InvalidInput("status", f"use one of: {', '.join(s.value for s in Status)}")
    return await _page(lambda limit, after, before: rows.orders_of_shop(
        db, slug, status, limit, after, before), page)


async def buyer_order(db: Database, buyer_id: str, order_id: str) -> Order:
    return await order_of_buyer(db, buyer_id, order_id)


async def buyer_orders(db: Database, buyer_id: str, page: Page | None = None) -> OrderPage:
    return await _page(lambda limit, after, before: rows.orders_of_buyer(
        db, buyer_id, limit, after, before), page or Page())


async def order_numbers(db: Database, slug: str) -> dict[str, Any]:
    """The shop's orders for its stats: how many in each status, revenue per currency (of
    orders not cancelled, declined or refunded) and orders per campaign."""
    numbers = await rows.order_stats(db, slug)
    return {"count": sum(numbers["by_status"].values()), "by_status": numbers["by_status"],
            "revenue": {currency: rules.money(total)
                        for currency, total in sorted(numbers["revenue"].items())},
            "by_campaign": await rows.orders_by_campaign(db, slug)}


def order_view(order: Order, *, personal: bool = True) -> dict[str, Any]:
    """An order as the API answers it; `personal` (the buyer, staff with the orders
    permission) adds the address and phone."""
    view: dict[str, Any] = {
        "id": order.id, "shop": order.merchant_slug, "buyer": order.buyer_id,
        "status": order.status, "currency": order.currency,
        "items": [{"sku": i.sku, "title": i.title, "unit_price": rules.money(i.unit_price),
                   "quantity": i.quantity, "total": rules.money(i.line_total)}
                  for i in order.items],
        "subtotal": rules.money(order.subtotal), "discount": rules.money(order.discount),
        "total": rules.money(order.total), "coupon": order.coupon_code,
        "delivery": {"kind": order.delivery_kind},
        "payment": {"method": order.payment_method,
                    "reference": order.payment_reference or None,
                    "paid_at": order.paid_at},
        "tracking": {"carrier": order.carrier, "number": order.tracking,
                     "url": order.tracking_url} if order.carrier else None,
        "reason": order.reason, "campaign": order.campaign_id,
        "history": [{"status": h.status, "by": h.actor, "note": h.note, "at": h.at}
                    for h in order.history],
        "created_at": order.created_at, "updated_at": order.updated_at,
    }
    if personal:
        view["delivery"].update(address=order.address, phone=order.phone,
                                erased=order.forgotten_at is not None)
    return view


def order_payload(order: Order) -> dict[str, Any]:
    """The order as webhooks carry it: no address or phone (the back-end reads them with
    its key), no history."""
    view = order_view(order, personal=False)
    view.pop("history", None)
    return view
