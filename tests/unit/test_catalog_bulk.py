"""Bulk catalog changes (the console's "change the ticked products") on SQLite and PostgreSQL:
every product is checked before any is written, all are saved in one transaction or none,
and the posted cards are edited only once the change is committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.errors import NotFound
from appservices.commerce.shops import storage as store
from mercato.db import Database, open_database
from mercato.types import UserID
from mercato.values import InvalidValue
from tests.unit.test_card_edits import CHANNEL, DEMO, OPERATOR, Homeserver

PRICES = {"mug": "24.00", "pot": "30.00", "cup": "8.00"}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    await store.insert_merchant(database, store.Merchant(
        slug=DEMO, name="Demo Shop", description="Tea", website="https://shop.example",
        mxid=UserID("@shop_demo:localhost"), owner_mxid=UserID("@m:localhost"),
        status="approved", created_at=1_700_000_000_000))
    for sku, price in PRICES.items():
        await catalog.create_product(database, Homeserver(database), OPERATOR, DEMO, {
            "sku": sku, "title": sku.title(), "price": price, "currency": "EUR"})
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
async def homeserver(db: Database) -> Homeserver:
    """The stand-in with a card of every product posted in the channel."""
    homeserver = Homeserver(db)
    for sku in PRICES:
        await catalog.share_card(db, homeserver, OPERATOR, DEMO, sku, CHANNEL)
    return homeserver


async def prices(db: Database) -> dict[str, str]:
    return {p.sku: p.price for p in await product_rows.list_products(db, DEMO, query="",
                                                                     limit=10, after_sku="")}


async def updates_audited(db: Database) -> int:
    return len([e for e in await store.audit_log(db, DEMO) if e.action == "product_updated"])


async def test_all_products_are_saved_together_and_their_cards_edited(
        db: Database, homeserver: Homeserver) -> None:
    changed = await catalog.update_products(db, homeserver, OPERATOR, DEMO, [
        ("mug", {"price": "20.00"}), ("pot", {"price": "27.00"})])
    assert [(p.sku, p.price) for p in changed] == [("mug", "20.00"), ("pot", "27.00")]
    assert await prices(db) == {"mug": "20.00", "pot": "27.00", "cup": "8.00"}
    assert await updates_audited(db) == 2
    await homeserver.deliver()
    assert sorted(price for _, _, price in homeserver.edits) == ["20.00", "27.00"]


async def test_one_refused_product_saves_none(db: Database, homeserver: Homeserver) -> None:
    with pytest.raises(InvalidValue) as refused:
        await catalog.update_products(db, homeserver, OPERATOR, DEMO, [
            ("mug", {"price": "20.00"}), ("pot", {"price": "-1"}), ("cup", {"price": "7.00"})])
    assert refused.value.field == "price"
    with pytest.raises(NotFound):
        await catalog.update_products(db, homeserver, OPERATOR, DEMO, [
            ("mug", {"price": "20.00"}), ("gone", {"price": "1.00"})])
    with pytest.raises(InvalidValue) as twice:
        await catalog.update_products(db, homeserver, OPERATOR, DEMO, [
            ("mug", {"price": "20.00"}), ("mug", {"price": "21.00"})])
    assert twice.value.message == "products: name each product once"
    assert await prices(db) == PRICES
    assert await updates_audited(db) == 0
    await homeserver.deliver()
    assert homeserver.edits == []


async def test_a_failure_in_the_middle_of_writing_leaves_nothing_changed(
        db: Database, homeserver: Homeserver, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    upsert = product_rows.upsert_product

    async def failing_second(conn: Any, slug: str, fields: dict[str, Any]) -> bool:
        if written:
            raise ConnectionResetError("the database went away")
        written.append(fields["sku"])
        return await upsert(conn, slug, fields)

    monkeypatch.setattr(product_rows, "upsert_product", failing_second)
    with pytest.raises(ConnectionResetError):
        await catalog.update_products(db, homeserver, OPERATOR, DEMO, [
            ("mug", {"price": "20.00"}), ("pot", {"price": "27.00"}),
            ("cup", {"price": "7.00"})])
    assert written == ["mug"]  # the first was written inside the transaction, then undone
    assert await prices(db) == PRICES
    assert await updates_audited(db) == 0
    await homeserver.deliver()
    assert homeserver.edits == [], "no card may show a price that was never saved"
