"""Claiming and redeeming coupon codes on a real database (SQLite and PostgreSQL): a rush
of claims hands out the stock and no more; two staff typing the same code at once redeem
it once, a code raced between the till and a checkout is spent once, expired and other
shops' codes are refused with the reason, the role table (owners, editors and support
may; analysts may not), and the shop's coupon list counts what happened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from appservices.commerce.campaigns import coupons
from appservices.commerce.campaigns import rules as campaign_rules
from appservices.commerce.campaigns import storage as campaign_rows
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.errors import CommerceError
from appservices.commerce.orders import operations as orders
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal
from mercato.db import Database, open_database
from mercato.types import MerchantSlug, RoomID, UserID
from tests.unit.test_orders_checkout import FakeShopSide

SLUG = MerchantSlug("till")
BUYER = "@ann:localhost"


def _staff(user: str) -> Principal:
    return Principal(kind="user", user_id=user)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    try:
        yield database
    finally:
        await database.stop()


async def _shop(db: Database, slug: str) -> None:
    await store.insert_merchant(db, store.Merchant(
        slug=MerchantSlug(slug), name=f"{slug.title()} Shop", description="", website="",
        mxid=UserID(f"@shop_{slug}:localhost"), owner_mxid=UserID("@owner:localhost"),
        status="approved", created_at=1_700_000_000_000))
    await store.update_merchant(db, slug, staff_room_id=RoomID(f"!staff-{slug}:localhost"))
    for user, role in (("@owner:localhost", "owner"), ("@ed:localhost", "editor"),
                       ("@sue:localhost", "support"), ("@ana:localhost", "analyst")):
        await store.put_staff(db, slug, user, role, "test")


@pytest.fixture
async def shop(db: Database) -> str:
    await _shop(db, SLUG)
    await product_rows.upsert_product(db, SLUG, {
        "sku": "tee", "title": "T-shirt", "price": "20.00", "currency": "EUR"})
    return SLUG


async def _code(db: Database, *, slug: str = SLUG, expires_in_ms: int = 3600_000,
                user: str = BUYER) -> str:
    coupon_id = await campaign_rows.insert_coupon(db, slug, "Ten off", 5,
                                                  store.now_ms() + expires_in_ms, "test")
    await db.execute("UPDATE coupon SET percent_off=10 WHERE id=$1", coupon_id)
    code = campaign_rows.new_code()
    await campaign_rows.insert_code(db, code, coupon_id, slug, user, store.now_ms())
    return code


async def _try(db: Database, who: str, code: str, slug: str = SLUG) -> str:
    try:
        done = await coupons.redeem(db, _staff(who), slug, code)
        return f"redeemed {done['code']} for {done['user_id']}"
    except CommerceError as e:
        return f"{e.status} {e.errcode}: {e.message}"


async def _audited(db: Database, code: str) -> int:
    entries = await store.audit_log(db, SLUG, limit=100)
    return sum(1 for e in entries if e.action == "coupon_redeemed" and e.detail["code"] == code)


async def test_two_redemptions_of_one_code_at_once_one_succeeds(
        db: Database, shop: str) -> None:
    code = await _code(db)
    results = await asyncio.gather(_try(db, "@sue:localhost", code),
                                   _try(db, "@owner:localhost", code.lower()))
    assert sorted(r.split(" ")[0] for r in results) == ["409", "redeemed"], results
    refused = next(r for r in results if r.startswith("409"))
    assert refused.startswith(f"409 MERCATO_CODE_USED: {code} was already redeemed on ")
    assert refused.endswith(" UTC.")
    row = await campaign_rows.get_code(db, code)
    assert row is not None and row["redeemed_at"] is not None
    assert row["redeemed_by"] in ("@sue:localhost", "@owner:localhost")
    assert await _audited(db, code) == 1

    # Later, at the same till: refused again, with the time it was used.
    again = await _try(db, "@sue:localhost", f"  {code} ")
    assert again.startswith(f"409 MERCATO_CODE_USED: {code} was already redeemed on ")
    assert await _audited(db, code) == 1


async def test_many_tills_at_once_still_one(db: Database, shop: str) -> None:
    code = await _code(db)
    results = await asyncio.gather(*(_try(db, "@sue:localhost", code) for _ in range(10)))
    assert sum(r.startswith("redeemed") for r in results) == 1, results
    assert all(r.startswith("redeemed") or "MERCATO_CODE_USED" in r for r in results)


async def test_a_code_raced_between_the_till_and_a_checkout_is_spent_once(
        db: Database, shop: str) -> None:
    code = await _code(db)
    side = FakeShopSide(db)

    async def checkout() -> str:
        try:
            order = await orders.place_order(db, side, BUYER, {  # type: ignore[arg-type]
                "shop": SLUG, "items": [{"sku": "tee", "quantity": 1}],
                "delivery": {"kind": "pickup"}, "payment": "on_delivery", "coupon": code})
            return f"ordered {order.total}"
        except CommerceError as e:
            return e.message

    results = await asyncio.gather(checkout(), _try(db, "@sue:localhost", code))
    won = [r for r in results if r.startswith(("ordered", "redeemed"))]
    assert len(won) == 1, results
    assert await db.fetchval("SELECT COUNT(*) FROM coupon_code WHERE code=$1 AND"
                             " redeemed_at IS NOT NULL", code) == 1


async def test_expired_unknown_and_other_shops_codes_are_refused_with_the_reason(
        db: Database, shop: str) -> None:
    expired = await _code(db, expires_in_ms=-1000)
    assert await _try(db, "@sue:localhost", expired) == (
        f"410 MERCATO_CODE_EXPIRED: {expired} expired; it cannot be redeemed.")
    await _shop(db, "other")
    theirs = await _code(db, slug="other")
    assert await _try(db, "@sue:localhost", theirs) == (
        f"404 MERCATO_CODE_UNKNOWN: {theirs} is not a code of this shop.")
    assert await _try(db, "@sue:localhost", "NOPE") == (
        "404 MERCATO_CODE_UNKNOWN: NOPE is not a code of this shop.")
    assert (await _try(db, "@sue:localhost", "  ")).startswith("400 MERCATO_INVALID")
    for code in (expired, theirs):
        row = await campaign_rows.get_code(db, code)
        assert row is not None and row["redeemed_at"] is None


async def test_owners_editors_and_support_redeem_analysts_and_strangers_do_not(
        db: Database, shop: str) -> None:
    for who in ("@owner:localhost", "@ed:localhost", "@sue:localhost"):
        assert (await _try(db, who, await _code(db))).startswith("redeemed"), who
    code = await _code(db)
    assert await _try(db, "@ana:localhost", code) == (
        "403 M_FORBIDDEN: Your role in 'till' is analyst, which may not redeem coupons.")
    assert await _try(db, "@eve:localhost", code) == (
        "403 M_FORBIDDEN: You are not staff of the shop 'till'.")
    row = await campaign_rows.get_code(db, code)
    assert row is not None and row["redeemed_at"] is None


async def test_the_coupon_list_counts_claims_redemptions_and_expiry(
        db: Database, shop: str) -> None:
    fresh = await _code(db)
    await _code(db, expires_in_ms=-1000, user="@bob:localhost")
    await coupons.redeem(db, _staff("@sue:localhost"), SLUG, fresh)
    listed = await coupons.shop_coupons(db, _staff("@ana:localhost"), SLUG)
    assert [(c["claims"], c["redemptions"], c["left"], c["expired"], c["source"])
            for c in listed] == [(1, 0, 4, True, "other"), (1, 1, 4, False, "other")]
    with pytest.raises(CommerceError, match="not staff"):
        await coupons.shop_coupons(db, _staff("@eve:localhost"), SLUG)


class _CodeDms:
    """Where claim_coupon sends a code: recorded, as if the outbox took it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send_coupon_code(self, merchant: store.Merchant, user_id: str, text: str,
                               code: str) -> tuple[str, str]:
        await asyncio.sleep(0)  # the outbox's write: other claims run meanwhile
        self.sent.append((user_id, code))
        return f"!dm-{user_id[1:].split(':')[0]}:localhost", ""


async def test_a_rush_of_claims_hands_out_the_stock_and_not_one_code_more(
        db: Database, shop: str) -> None:
    """Claims from many followers at once (reactions in several channels, the API, the
    shop bot) may run side by side: exactly `stock` codes, the rest told it is sold out."""
    coupon_id = await campaign_rows.insert_coupon(db, shop, "Flash drop", 3,
                                                  store.now_ms() + 3600_000, "test")
    campaign = await campaign_rows.insert_campaign(
        db, slug=shop, kind="coupon", fields={"title": "Flash drop"}, image_mxc="",
        image_info={}, silent=False, channel_ids=[], coupon_id=coupon_id, created_by="test")
    await db.execute("UPDATE campaign SET state='sent' WHERE id=$1", campaign)
    dms = _CodeDms()
    claimers = [f"@fan{n}:localhost" for n in range(60)]

    async def claim(user: str) -> str:
        try:
            return (await coupons.claim_coupon(db, dms, coupon_id, user))["code"]  # type: ignore[arg-type]
        except CommerceError as e:
            return f"{e.status} {e.errcode}"

    answers = await asyncio.gather(*(claim(u) for u in claimers + claimers[:4]))
    codes = {row["code"]: row["user_id"] for row in await db.fetch(
        "SELECT code, user_id FROM coupon_code WHERE coupon_id=$1", coupon_id)}
    assert len(codes) == 3 and len(set(codes.values())) == 3
    assert {a for a in answers if a in codes} == set(codes)
    assert all(a == "410 MERCATO_COUPON_SOLD_OUT" for a in answers if a not in codes)
    assert {code for _, code in dms.sent} == set(codes)  # each winner's code, in their DM


@pytest.mark.parametrize(("event", "queue"), [
    ({"type": "m.reaction", "room_id": "!c:x", "sender": "@ann:x", "content": {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": "$p", "key": "🎟️"}}},
     "!c:x @ann:x"),
    ({"type": "m.reaction", "room_id": "!c:x", "sender": "@ann:x", "content": {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": "$p", "key": "🎟"}}},
     "!c:x @ann:x"),  # without the emoji presentation selector, as some clients send it
    ({"type": "m.reaction", "room_id": "!c:x", "sender": "@ann:x", "content": {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": "$p", "key": "⭐"}}}, None),
    ({"type": "m.room.message", "room_id": "!c:x", "sender": "@ann:x",
      "content": {"body": "🎟️"}}, None),
    ({"type": "m.reaction", "room_id": "!c:x", "sender": "@ann:x", "content": "🎟️"}, None),
])
def test_claims_by_reaction_wait_in_a_queue_per_room_and_claimer(
        event: dict[str, Any], queue: str | None) -> None:
    assert campaign_rules.claim_queue(event) == queue
