"""The storefront's rules (which page, its links, how stock and prices read, the checkout
form as an order) and its catalog reads on a real database (SQLite and PostgreSQL): one
page with its count, search that takes % and _ as themselves, a tag as a whole tag."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.catalog.products import Product
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.shops import storage as store
from appservices.commerce.web import storefront_storage as listing_rows
from appservices.commerce.web.storefront_rules import (
    Listing,
    checkout_body,
    form_quantity,
    page_count,
    pager,
    parse_listing,
    percent_off,
    stock_label,
)
from mercato.db import Database, open_database
from mercato.types import MerchantSlug, UserID


def _product(**fields: object) -> Product:
    base: dict[str, object] = dict(
        merchant_slug="tea", sku="t1", title="Tea", description="", price="9.00",
        currency="EUR", original_price=None, image_mxc="", image_info={}, url="",
        stock="in_stock")
    return Product(**{**base, **fields})  # type: ignore[arg-type]


def test_listing_from_the_query_string_never_fails() -> None:
    assert parse_listing({}) == Listing()
    assert parse_listing({"q": "  green   tea ", "tag": " Mugs", "page": "3"}) == Listing(
        query="green tea", tag="mugs", page=3)
    assert parse_listing({"page": "nonsense"}).page == 1
    assert parse_listing({"page": "-4"}).page == 1
    assert len(parse_listing({"q": "x" * 500}).query) == 100


def test_links_keep_the_search_and_leave_defaults_out() -> None:
    listing = Listing(query="tea & cake", tag="", page=2)
    assert listing.link(page=1) == "?q=tea+%26+cake"
    assert listing.link(page=3) == "?q=tea+%26+cake&page=3"
    assert Listing().link() == ""
    assert listing.offset == 48


def test_pager_ends() -> None:
    assert page_count(0) == 1 and page_count(48) == 1 and page_count(49) == 2
    first = pager(Listing(), 100)
    assert (first.pages, first.previous, first.next) == (3, None, "?page=2")
    second = pager(Listing(page=2), 100)
    assert (second.previous, second.next) == ("", "?page=3")
    assert pager(Listing(page=3), 100).next is None


def test_stock_reads_from_the_counted_quantity() -> None:
    assert stock_label(_product()) == ("In stock", "in-stock")
    assert stock_label(_product(quantity=3)) == ("Only 3 left", "low")
    assert stock_label(_product(quantity=40)) == ("In stock", "in-stock")
    assert stock_label(_product(quantity=0)) == ("Sold out", "sold-out")
    assert stock_label(_product(stock="out_of_stock")) == ("Sold out", "sold-out")
    assert stock_label(_product(stock="preorder")) == ("Pre-order", "preorder")


def test_sale_percent() -> None:
    assert percent_off(_product(price="7.50", original_price="10.00")) == 25
    assert percent_off(_product(price="10.00", original_price="10.00")) is None
    assert percent_off(_product()) is None


def test_checkout_form_becomes_the_order_orders_take() -> None:
    form = {"delivery": "shipping", "address": " Main St 1 ", "phone": "+49 30 1234567",
            "payment": "on_delivery", "coupon": ""}
    assert checkout_body("tea", form) == {
        "shop": "tea", "from_cart": True, "payment": "on_delivery", "coupon": None,
        "delivery": {"kind": "shipping", "address": "Main St 1", "phone": "+49 30 1234567"}}
    pickup = checkout_body("tea", {**form, "delivery": "pickup", "coupon": "ab12"})
    assert "address" not in pickup["delivery"] and pickup["coupon"] == "ab12"
    assert form_quantity("3") == 3 and form_quantity("three") == "three"
    assert form_quantity(None) == ""


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    try:
        yield database
    finally:
        await database.stop()


async def _shop(db: Database) -> str:
    slug = MerchantSlug("teahouse")
    await store.insert_merchant(db, store.Merchant(
        slug=slug, name="Tea House", description="", website="https://tea.example",
        mxid=UserID("@shop_teahouse:localhost"), owner_mxid=UserID("@owner:localhost"),
        status="approved", created_at=1_700_000_000_000))
    for n in range(60):
        await product_rows.upsert_product(db, slug, {
            "sku": f"p{n:02d}", "title": f"Tea {n:02d}", "price": "5.00", "currency": "EUR",
            "tags": ["green"] if n % 3 == 0 else ["green-black"] if n % 3 == 1 else []})
    await product_rows.upsert_product(db, slug, {
        "sku": "odd", "title": "100% oolong_tin", "price": "9.00", "currency": "EUR",
        "description": "A whole leaf"})
    return slug


async def test_a_page_with_its_count_search_and_tags(db: Database) -> None:
    slug = await _shop(db)
    first = await listing_rows.shop_page(db, slug, Listing())
    assert first.matching == 61 and len(first.products) == 48
    last = await listing_rows.shop_page(db, slug, Listing(page=2))
    assert last.matching == 61 and len(last.products) == 13
    beyond = await listing_rows.shop_page(db, slug, Listing(page=9))
    assert (beyond.products, beyond.matching) == ([], 61)

    # % and _ are what the buyer typed, not wildcards; the description is searched too.
    percent = await listing_rows.shop_page(db, slug, Listing(query="100%"))
    assert [p.sku for p in percent.products] == ["odd"]
    assert (await listing_rows.shop_page(db, slug, Listing(query="g_reen"))).matching == 0
    assert [p.sku for p in (await listing_rows.shop_page(
        db, slug, Listing(query="WHOLE LEAF"))).products] == ["odd"]

    # A tag matches whole tags only: "green" is not "green-black".
    green = await listing_rows.shop_page(db, slug, Listing(tag="green"))
    assert green.matching == 20 and all("green" in p.tags for p in green.products)
    both = await listing_rows.shop_page(db, slug, Listing(tag="green", query="tea 3"))
    assert [p.sku for p in both.products] == ["p30", "p33", "p36", "p39"]
    assert await listing_rows.shop_tags(db, slug) == ["green", "green-black"]
