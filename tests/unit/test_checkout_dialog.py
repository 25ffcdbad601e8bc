"""The chat checkout: how each answer is read (pure), and the dialog on a real database
(SQLite and PostgreSQL) — the draft survives the database being closed and opened again
(the appservice restarting mid-dialog), an answer handled twice is applied once, a 🛒
handled twice adds once, and `confirm` places the order from the cart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.orders import chat, checkout_chat, views
from appservices.commerce.orders import chat_storage as chat_rows
from appservices.commerce.orders import storage as order_rows
from appservices.commerce.orders.checkout_dialog import (
    Draft,
    Options,
    Step,
    answer,
    filled,
    next_step,
    question,
)
from appservices.commerce.shops import storage as store
from mercato.db import Connection, Database, open_database
from mercato.matrix.outbox import Message, Outbox
from mercato.types import MerchantSlug, UserID

SLUG = MerchantSlug("dialog")
BUYER = "@buyer:localhost"
DM = "!dm:localhost"
OPTIONS = Options.of({"delivery": ["shipping", "pickup"], "payment_methods": [
    {"method": "on_delivery", "label": "Pay on delivery", "delivery": ["shipping"]},
    {"method": "bank_transfer", "label": "Bank transfer",
     "delivery": ["shipping", "pickup", "none"]},
    {"method": "pickup", "label": "Pay at pickup", "delivery": ["pickup"]}]})


def _draft(**fields: Any) -> Draft:
    return Draft(DM, SLUG, BUYER, **fields)


# -- pure ------------------------------------------------------------------------------------

def test_the_dialog_asks_delivery_address_phone_payment_coupon_then_confirm() -> None:
    draft = _draft()
    assert next_step(draft) == Step.DELIVERY
    asked = question(draft, OPTIONS)
    assert "1. shipping to your address\n2. pickup at the shop" in asked.text
    draft = answer(draft, OPTIONS, "1").draft
    assert next_step(draft) == Step.ADDRESS
    draft = answer(draft, OPTIONS, "Ada Lovelace\nMusterstr. 1\n10115 Berlin").draft
    assert draft.address == "Ada Lovelace\nMusterstr. 1\n10115 Berlin"
    draft = answer(draft, OPTIONS, "+49 30 1234567").draft
    assert next_step(draft) == Step.PAYMENT
    assert "1. Pay on delivery\n2. Bank transfer" in question(draft, OPTIONS).text
    draft = answer(draft, OPTIONS, "bank transfer").draft
    assert draft.payment_method == "bank_transfer"
    draft = answer(draft, OPTIONS, "skip").draft
    assert (draft.coupon_code, next_step(draft)) == ("", Step.CONFIRM)


def test_wrong_answers_are_asked_again_with_what_to_type() -> None:
    draft = _draft()
    wrong = answer(draft, OPTIONS, "by pigeon")
    assert wrong.draft == draft and wrong.problem == "I did not get that choice."
    again = question(wrong.draft, OPTIONS, wrong.problem)
    assert again.text.startswith("I did not get that choice.\nHow should your order reach")
    assert "Answer with the number or the word (shipping, pickup)" in again.text
    assert answer(draft, OPTIONS, "7").problem  # no seventh choice
    shipping = answer(draft, OPTIONS, "shipping").draft
    assert answer(shipping, OPTIONS, "here").problem == "That is too short for a postal address."
    addressed = answer(shipping, OPTIONS, "Musterstr. 1, Berlin").draft
    bad_phone = answer(addressed, OPTIONS, "call me maybe")
    assert bad_phone.problem and "like +49 30 1234567" in bad_phone.problem
    assert answer(addressed, OPTIONS, "skip").draft.phone == ""
    paying = answer(addressed, OPTIONS, "skip").draft
    assert answer(paying, OPTIONS, "cash in a sock").problem == \
        "I did not get that payment method."
    assert answer(paying, OPTIONS, "Pay on delivery").draft.payment_method == "on_delivery"
    assert answer(paying, OPTIONS, "2").draft.payment_method == "bank_transfer"


def test_one_way_to_deliver_and_one_method_are_not_asked() -> None:
    pickup_only = Options.of({"delivery": ["pickup"], "payment_methods": [
        {"method": "pickup", "label": "Pay at pickup", "delivery": ["pickup"]}]})
    draft = filled(_draft(), pickup_only)
    assert (draft.delivery_kind, draft.payment_method) == ("pickup", "pickup")
    assert next_step(draft) == Step.COUPON
    picked = answer(_draft(), OPTIONS, "pickup").draft
    assert picked.payment_method is None  # bank transfer or at pickup: asked


# -- on a database ------------------------------------------------------------------------------

class ShopSide:
    """The orders' Matrix port without a homeserver: the buyer's DM, the real outbox."""

    public_url = "https://mercato.example"
    mercato_hosts = ("mercato.example",)

    def __init__(self, db: Database) -> None:
        self.outbox = Outbox(db, "test", lambda mxid: None)  # type: ignore[arg-type,return-value]

    async def order_room(self, merchant: store.Merchant, user_id: str) -> tuple[str, bool]:
        return DM, True

    async def queue_message(self, message: Message, conn: Connection) -> None:
        await self.outbox.record(message, conn)

    async def queue_card_edit(self, *args: Any, **kwargs: Any) -> None:
        return None

    def wake_messages(self) -> None:
        return None


async def _open(url: str) -> Database:
    database = open_database(url, upgrade_table, "commerce")
    await database.start()
    return database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await _open(database_url)
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
async def shop(db: Database) -> store.Merchant:
    merchant = store.Merchant(
        slug=SLUG, name="Dialog Shop", description="", website="https://shop.example",
        mxid=UserID("@shop_dialog:localhost"), owner_mxid=UserID("@owner:localhost"),
        status="approved", created_at=1_700_000_000_000)
    await store.insert_merchant(db, merchant)
    await product_rows.upsert_product(db, SLUG, {
        "sku": "mug", "title": "Mug", "price": "12.50", "currency": "EUR", "quantity": 5})
    await order_rows.put_settings(db, SLUG, {
        "payment_methods": {"on_delivery": {}, "bank_transfer": {"details": "IBAN DE89"}},
        "delivery": ["shipping", "pickup"]})
    return merchant


async def _answers(db: Database) -> list[str]:
    rows = await db.fetch("SELECT content FROM outbound_message WHERE kind='order_chat'"
                          " ORDER BY created_at, txn_id")
    return [json.loads(r["content"])["body"] for r in rows]


async def test_a_checkout_survives_a_restart_and_places_the_order(
        database_url: str, db: Database, shop: store.Merchant) -> None:
    side = ShopSide(db)
    await chat.add_once(db, BUYER, SLUG, "mug", 2, "$buy")
    first = await checkout_chat.start(db, shop, DM, BUYER, "$checkout")
    assert first.text.startswith("Checkout at Dialog Shop: 2 items, 25.00 EUR.\nHow should")
    for n, text in enumerate(["1", "Ada Lovelace\nMusterstr. 1\n10115 Berlin", "skip"]):
        await checkout_chat.handle_answer(db, side, shop, DM, BUYER, f"$a{n}", text)  # type: ignore[arg-type]

    # The appservice stops and starts again: the dialog is where it was.
    await db.stop()
    reopened = await _open(database_url)
    try:
        draft = await chat_rows.get_draft(reopened, DM)
        assert draft is not None and next_step(draft) == Step.PAYMENT
        assert (draft.delivery_kind, draft.address, draft.phone) == (
            "shipping", "Ada Lovelace\nMusterstr. 1\n10115 Berlin", "")
        side = ShopSide(reopened)
        for n, text in enumerate(["1", "skip"], 3):
            await checkout_chat.handle_answer(reopened, side, shop, DM, BUYER, f"$a{n}", text)  # type: ignore[arg-type]
        # Handled again after a crash: applied and answered once.
        await checkout_chat.handle_answer(reopened, side, shop, DM, BUYER, "$a4", "skip")  # type: ignore[arg-type]
        answers = await _answers(reopened)
        assert answers[-1].startswith("Your order:\n2 × Mug (mug) — 25.00 EUR\n"), answers
        assert "Total: 25.00 EUR" in answers[-1] and "Payment: Pay on delivery" in answers[-1]
        assert len(answers) == 5

        await checkout_chat.handle_answer(reopened, side, shop, DM, BUYER, "$confirm", "confirm")  # type: ignore[arg-type]
        await checkout_chat.handle_answer(reopened, side, shop, DM, BUYER, "$confirm", "confirm")  # type: ignore[arg-type]
        placed = (await views.buyer_orders(reopened, BUYER)).orders
        assert len(placed) == 1 and placed[0].address == "Ada Lovelace\nMusterstr. 1\n10115 Berlin"
        assert (placed[0].payment_method, placed[0].total) == ("on_delivery", 2500)
        assert await chat_rows.get_draft(reopened, DM) is None  # the address left the draft
        assert (await _answers(reopened))[-1].startswith(f"Thank you! Order {placed[0].id}")
        assert await order_rows.cart_items(reopened, BUYER, SLUG) == []
    finally:
        await reopened.stop()


async def test_a_cart_reaction_handled_twice_adds_once(db: Database,
                                                       shop: store.Merchant) -> None:
    await chat.add_by_reaction(db, ShopSide(db), SLUG, "mug", BUYER, "$react")  # type: ignore[arg-type]
    await chat.add_by_reaction(db, ShopSide(db), SLUG, "mug", BUYER, "$react")  # type: ignore[arg-type]
    assert await order_rows.cart_items(db, BUYER, SLUG) == [("mug", 1)]
    answers = await _answers(db)
    assert len(answers) == 1 and answers[0].startswith("🛒 Added 1 × Mug to your cart.")
    await chat.add_by_reaction(db, ShopSide(db), SLUG, "mug", BUYER, "$react2")  # type: ignore[arg-type]
    assert await order_rows.cart_items(db, BUYER, SLUG) == [("mug", 2)]


async def test_stop_drops_the_draft_and_keeps_the_cart(db: Database,
                                                       shop: store.Merchant) -> None:
    side = ShopSide(db)
    await chat.add_once(db, BUYER, SLUG, "mug", 1, "$buy")
    await checkout_chat.start(db, shop, DM, BUYER, "$checkout")
    await checkout_chat.handle_answer(db, side, shop, DM, BUYER, "$bad", "by pigeon")  # type: ignore[arg-type]
    assert (await _answers(db))[-1].startswith("I did not get that choice.")
    await checkout_chat.handle_answer(db, side, shop, DM, BUYER, "$stop", "cancel")  # type: ignore[arg-type]
    assert await chat_rows.get_draft(db, DM) is None
    assert (await _answers(db))[-1].startswith("Checkout stopped; nothing was ordered.")
    assert await order_rows.cart_items(db, BUYER, SLUG) == [("mug", 1)]


def test_commands_and_ordinary_messages_are_told_apart() -> None:
    for text in ("buy mug", "buy mug 2", "cart", "cart remove mug", "checkout", "orders",
                 "order A7K3Q9", "cancel a7k3q9", "forget A7K3Q9", "help", "help buy",
                 "!cancel my order", "buy"):
        assert chat.is_command(text), text
    for text in ("Hello, is the mug dishwasher safe?", "cancel my order please",
                 "order 5 mugs", "help me please", "buy this one", "Thanks!"):
        assert not chat.is_command(text), text
