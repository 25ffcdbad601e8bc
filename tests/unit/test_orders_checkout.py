"""Placing orders on a real database (SQLite and PostgreSQL): stock taken atomically under
concurrency, a coupon code spent once, nothing half written when an order is refused, and
the order's messages recorded in the outbox in the same transaction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from appservices.commerce.campaigns import storage as campaign_rows
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.errors import CommerceError
from appservices.commerce.orders import operations as orders
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal
from mercato.db import Connection, Database, open_database
from mercato.matrix.outbox import Message, Outbox
from mercato.types import MerchantSlug, RoomID, UserID
from mercato.values import InvalidValue

SLUG = MerchantSlug("demo")
STAFF_ROOM = "!staff:localhost"
OWNER = Principal(kind="api_key", key_slug=SLUG, key_role="owner", key_id="k1")


class FakeShopSide:
    """The Matrix port of orders without a homeserver: a DM per buyer, the real outbox."""

    public_url = "https://mercato.example"
    mercato_hosts = ("mercato.example",)

    def __init__(self, db: Database) -> None:
        self.outbox = Outbox(db, "test", lambda mxid: None)  # type: ignore[arg-type,return-value]

    async def order_room(self, merchant: store.Merchant, user_id: str) -> tuple[str, bool]:
        return f"!dm-{user_id[1:].split(':')[0]}:localhost", True

    async def queue_message(self, message: Message, conn: Connection) -> None:
        await self.outbox.record(message, conn)

    async def queue_card_edit(self, *args: Any, **kwargs: Any) -> None:
        return None

    def wake_messages(self) -> None:
        return None


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
async def shop(db: Database) -> store.Merchant:
    merchant = store.Merchant(
        slug=SLUG, name="Demo Shop", description="", website="https://shop.example",
        mxid=UserID("@shop_demo:localhost"), owner_mxid=UserID("@owner:localhost"),
        status="approved", created_at=1_700_000_000_000)
    await store.insert_merchant(db, merchant)
    await store.update_merchant(db, SLUG, staff_room_id=RoomID(STAFF_ROOM))
    await product_rows.upsert_product(db, SLUG, {
        "sku": "mug", "title": "Mug", "price": "12.50", "currency": "EUR", "quantity": 5})
    await product_rows.upsert_product(db, SLUG, {
        "sku": "tee", "title": "T-shirt", "price": "20.00", "currency": "EUR"})
    return replace(merchant, staff_room_id=RoomID(STAFF_ROOM))


async def _coupon(db: Database, user_id: str, percent_off: int = 10,
                  expires_in_ms: int = 3600_000, slug: str = SLUG) -> str:
    coupon_id = await campaign_rows.insert_coupon(db, slug, "Ten off", 10,
                                                  store.now_ms() + expires_in_ms, "test")
    await db.execute("UPDATE coupon SET percent_off=$1 WHERE id=$2", percent_off, coupon_id)
    code = campaign_rows.new_code()
    await campaign_rows.insert_code(db, code, coupon_id, slug, user_id, store.now_ms())
    return code


def _body(*items: tuple[str, int], **more: Any) -> dict[str, Any]:
    return {"shop": SLUG, "items": [{"sku": s, "quantity": q} for s, q in items],
            "delivery": {"kind": "shipping", "address": "1 Road, Town", "phone": "+49 30 1234"},
            "payment": "on_delivery", **more}


async def _counts(db: Database) -> tuple[int, int, int, int]:
    """(orders, items, history rows, outbox messages)"""
    return (await db.fetchval("SELECT COUNT(*) FROM orders"),
            await db.fetchval("SELECT COUNT(*) FROM order_item"),
            await db.fetchval("SELECT COUNT(*) FROM order_history"),
            await db.fetchval("SELECT COUNT(*) FROM outbound_message"))


async def test_fifty_buyers_for_the_last_five_units_five_get_one(
        db: Database, shop: store.Merchant) -> None:
    side = FakeShopSide(db)

    async def buy(n: int) -> str:
        try:
            order = await orders.place_order(db, side, f"@b{n}:localhost", _body(("mug", 1)))  # type: ignore[arg-type]
            return order.id
        except CommerceError as e:
            return f"refused {e.status} {e.errcode}: {e.message}"

    results = await asyncio.gather(*(buy(n) for n in range(50)))
    placed = [r for r in results if not r.startswith("refused")]
    refused = [r for r in results if r.startswith("refused")]
    assert len(placed) == 5 and len(set(placed)) == 5
    assert all(r.startswith("refused 409 MERCATO_SOLD_OUT") for r in refused), refused
    assert all("sold out" in r or "left" in r for r in refused)
    mug = await product_rows.get_product(db, SLUG, "mug")
    assert mug is not None and (mug.quantity, mug.stock) == (0, "out_of_stock")
    # Each order wrote its card and its staff thread, and nothing else was written.
    assert await _counts(db) == (5, 5, 5, 10)


async def test_a_code_is_spent_once_even_when_two_orders_race(
        db: Database, shop: store.Merchant) -> None:
    side = FakeShopSide(db)
    code = await _coupon(db, "@ann:localhost")

    async def buy() -> str:
        try:
            order = await orders.place_order(db, side, "@ann:localhost",  # type: ignore[arg-type]
                                             _body(("tee", 1), coupon=code.lower()))
            return f"{order.total}"
        except CommerceError as e:
            return e.message

    results = await asyncio.gather(*(buy() for _ in range(8)))
    assert results.count("1800") == 1, results
    assert all(r == "1800" or "was already used" in r for r in results), results
    assert await db.fetchval("SELECT COUNT(*) FROM orders WHERE coupon_code=$1", code) == 1


async def test_a_refused_order_changes_nothing(db: Database, shop: store.Merchant) -> None:
    side = FakeShopSide(db)
    other = store.Merchant(
        slug=MerchantSlug("other"), name="Other", description="", website="",
        mxid=UserID("@shop_other:localhost"), owner_mxid=UserID("@o:localhost"),
        status="approved", created_at=1)
    await store.insert_merchant(db, other)
    foreign = await _coupon(db, "@ann:localhost", slug="other")
    expired = await _coupon(db, "@ann:localhost", expires_in_ms=-1000)
    for body, error in (
            (_body(("nope", 1)), "Demo Shop has no product 'nope'"),
            (_body(("mug", 0)), "order from 1 to 99"),
            (_body(("mug", 100)), "order from 1 to 99"),
            (_body(("mug", 6)), "Only 5 of Mug (mug) left"),
            (_body(("mug", 1), coupon=foreign), "is not a code of Demo Shop"),
            (_body(("mug", 1), coupon=expired), "has expired"),
            (_body(("mug", 1), payment="bank_transfer"), "this shop takes: on_delivery, pickup"),
            ({**_body(("mug", 1)), "delivery": {"kind": "shipping"}},
             "delivery.address: is required")):
        with pytest.raises((CommerceError, InvalidValue)) as refused:
            await orders.place_order(db, side, "@ann:localhost", body)  # type: ignore[arg-type]
        assert 400 <= getattr(refused.value, "status", 400) < 500  # InvalidValue: 400
        assert error in refused.value.message
    # A stock failure inside the transaction rolls back the code spent before it.
    code = await _coupon(db, "@ann:localhost")
    await db.execute("UPDATE product SET quantity=0 WHERE sku='mug'")
    with pytest.raises(CommerceError):
        await orders.place_order(db, side, "@ann:localhost",  # type: ignore[arg-type]
                                 _body(("mug", 1), coupon=code))
    assert await _counts(db) == (0, 0, 0, 0)
    assert await db.fetchval("SELECT redeemed_at FROM coupon_code WHERE code=$1", code) is None


async def test_cancel_returns_stock_and_a_code_before_confirmation(
        db: Database, shop: store.Merchant) -> None:
    side = FakeShopSide(db)
    code = await _coupon(db, "@ann:localhost")
    order = await orders.place_order(db, side, "@ann:localhost",  # type: ignore[arg-type]
                                     _body(("mug", 2), coupon=code))
    assert (order.subtotal, order.discount, order.total) == (2500, 250, 2250)
    cancelled = await orders.cancel_order(db, side, "@ann:localhost", order.id)  # type: ignore[arg-type]
    assert cancelled.status == "cancelled"
    assert [h.status for h in cancelled.history] == ["placed", "cancelled"]
    mug = await product_rows.get_product(db, SLUG, "mug")
    assert mug is not None and mug.quantity == 5
    assert await db.fetchval("SELECT redeemed_at FROM coupon_code WHERE code=$1", code) is None
    with pytest.raises(CommerceError) as again:
        await orders.cancel_order(db, side, "@ann:localhost", order.id)  # type: ignore[arg-type]
    assert again.value.message == f"Order {order.id} is already cancelled."
    with pytest.raises(CommerceError) as ship:
        await orders.change_status(db, side, OWNER, SLUG, order.id,  # type: ignore[arg-type]
                                   {"status": "shipped", "carrier": "DHL"})
    assert ship.value.message == (f"Order {order.id} is cancelled; a cancelled order cannot be "
                                  "shipped.")
    kinds = [r["kind"] for r in await db.fetch(
        "SELECT kind FROM outbound_message ORDER BY id")]
    assert kinds == ["order_card", "order_staff", "order_card_edit", "order_notice",
                     "order_staff_update"]
    notice = json.loads(await db.fetchval(
        "SELECT content FROM outbound_message WHERE kind='order_notice'"))
    assert notice["body"] == f"Your order {order.id} at Demo Shop was cancelled."
