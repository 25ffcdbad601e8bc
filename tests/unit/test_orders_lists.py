"""Carts and lists of orders on a real database (SQLite and PostgreSQL): additions to a
cart made at once all count, a buyer's carts at every shop are read in one answer, and
pages of orders carry each order's items and history and miss no order placed in the
same millisecond as the last one of a page."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from appservices.commerce.errors import CommerceError
from appservices.commerce.orders import carts, views
from appservices.commerce.orders import operations as orders
from appservices.commerce.orders import storage as order_rows
from appservices.commerce.shops import storage as store
from mercato.db import Database
from mercato.types import MerchantSlug, UserID
from tests.unit.test_orders_checkout import OWNER, SLUG, FakeShopSide, _body, db, shop

__all__ = ["db", "shop"]  # the fixtures, shared with the checkout tests
BUYER = "@ann:localhost"


class CountedQueries:
    """The database, counting the queries made through it."""

    def __init__(self, db: Database) -> None:
        self.db, self.count = db, 0

    async def fetch(self, *args: Any) -> Any:
        self.count += 1
        return await self.db.fetch(*args)

    async def fetchrow(self, *args: Any) -> Any:
        self.count += 1
        return await self.db.fetchrow(*args)


async def test_additions_made_at_once_all_count(db: Database, shop: store.Merchant) -> None:
    results = await asyncio.gather(*(carts.add_to_cart(db, BUYER, SLUG, "tee", 1)
                                     for _ in range(12)), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert await order_rows.cart_quantity(db, BUYER, SLUG, "tee") == 12
    # The sum is checked: no more than 99 of a product, no more than is in stock.
    with pytest.raises(CommerceError) as too_many:
        await carts.add_to_cart(db, BUYER, SLUG, "tee", 90)
    assert too_many.value.message == ("quantity in the cart: would be 102; order from 1 to 99 "
                                      "of a product at a time")
    await carts.add_to_cart(db, BUYER, SLUG, "mug", 4)
    with pytest.raises(CommerceError) as sold:
        await carts.add_to_cart(db, BUYER, SLUG, "mug", 2)
    assert sold.value.message == "Only 5 of Mug (mug) left; ask for 5 or fewer."
    view = await carts.cart_view(db, BUYER, SLUG)
    assert [(i["sku"], i["quantity"]) for i in view["items"]] == [("tee", 12), ("mug", 4)]


async def test_a_buyers_carts_at_every_shop_say_when_a_shop_cannot_take_orders(
        db: Database, shop: store.Merchant) -> None:
    other = store.Merchant(
        slug=MerchantSlug("other"), name="Other Shop", description="", website="",
        mxid=UserID("@shop_other:localhost"), owner_mxid=UserID("@o:localhost"),
        status="approved", created_at=1)
    await store.insert_merchant(db, other)
    await db.execute("INSERT INTO product (merchant_slug, sku, title, price, currency,"
                     " created_at, updated_at) VALUES ('other', 'pen', 'Pen', '2.00', 'EUR',"
                     " 1, 1)")
    await carts.add_to_cart(db, BUYER, "other", "pen", 3)
    await carts.add_to_cart(db, BUYER, SLUG, "tee", 1)
    await carts.add_to_cart(db, "@bob:localhost", SLUG, "mug", 1)
    await store.update_merchant(db, MerchantSlug("other"), status="suspended")

    found = await carts.buyer_carts(db, BUYER)
    assert [(c["shop"], c["subtotal"], c["shop_status"], c["note"]) for c in found] == [
        (SLUG, "20.00", "approved", None),
        ("other", "6.00", "suspended", "Other Shop is suspended and cannot take orders now.")]
    assert found[1]["items"][0]["title"] == "Pen"
    assert await carts.buyer_carts(db, "@nobody:localhost") == []


async def _orders_in_one_millisecond(db: Database, count: int) -> list[str]:
    side = FakeShopSide(db)
    placed = [await orders.place_order(db, side, BUYER,  # type: ignore[arg-type]
                                       _body(("tee", 1 + n % 2))) for n in range(count)]
    await db.execute("UPDATE orders SET created_at=1700000000000")
    return [o.id for o in placed]


async def test_pages_of_orders_miss_none_placed_in_the_same_millisecond(
        db: Database, shop: store.Merchant) -> None:
    placed = await _orders_in_one_millisecond(db, 5)
    for read in (lambda page: views.shop_orders(db, OWNER, SLUG, None, page),
                 lambda page: views.buyer_orders(db, BUYER, page)):
        seen: list[str] = []
        cursor = None
        for _ in range(5):
            page = await read(views.Page(limit=2, cursor=cursor))
            seen += [o.id for o in page.orders]
            cursor = page.next
            if cursor is None:
                break
        assert sorted(seen) == sorted(placed) and len(seen) == 5, seen
    with pytest.raises(CommerceError) as bad:
        await views.buyer_orders(db, BUYER, views.Page(cursor="not-a-cursor"))
    assert bad.value.message.startswith("cursor: is not one a page of orders gave")


async def test_a_page_of_orders_carries_items_and_history_in_two_queries_more(
        db: Database, shop: store.Merchant) -> None:
    placed = await _orders_in_one_millisecond(db, 6)
    await orders.change_status(db, FakeShopSide(db), OWNER, SLUG, placed[0],  # type: ignore[arg-type]
                               {"status": "confirmed"})
    counted = CountedQueries(db)
    listed = await order_rows.orders_of_shop(counted, SLUG, None, 10)
    assert counted.count == 3  # the orders, their items, their history
    by_id = {o.id: o for o in listed}
    assert [(i.sku, i.quantity) for i in by_id[placed[1]].items] == [("tee", 2)]
    assert [h.status for h in by_id[placed[0]].history] == ["placed", "confirmed"]
    answer = views.order_view(by_id[placed[0]], personal=False)
    assert answer["items"] == [{"sku": "tee", "title": "T-shirt", "unit_price": "20.00",
                                "quantity": 1, "total": "20.00"}]
    assert [h["status"] for h in answer["history"]] == ["placed", "confirmed"]
