"""The menu's rules (what it shows, links a shop may add, who may pin), the follow
reward's arithmetic, and their tables on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import zxingcpp
from PIL import Image

from appservices.commerce import links
from appservices.commerce.campaigns import storage as coupon_rows
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.errors import InvalidInput
from appservices.commerce.shops import follow_reward, menu, qr
from appservices.commerce.shops import follow_storage as rows
from appservices.commerce.shops import menu_storage as menu_rows
from appservices.commerce.shops import storage as store
from mercato.db import Database, open_database, transaction
from mercato.types import MerchantSlug, RoomID, UserID

SHOP = "@shop_tea:localhost"
POLICY = links.LinkPolicy(allowed_hosts=("shop.example.org", "tea.example"), verified=True)


def tea_menu(**changes: object) -> menu.Menu:
    values: dict = {"slug": "tea", "shop_name": "Tea <House>", "verified": True,
                    "storefront_url": "https://shop.example.org/s/tea", "orders_url": "",
                    "extra": ()}
    values.update(changes)
    return menu.Menu(**values)


def test_the_dm_menu_lists_storefront_orders_coupons_and_a_person() -> None:
    content = menu.dm_menu_content(tea_menu(), 4)
    assert content["body"].splitlines() == [
        "📌 Tea <House> ✓ — menu",
        "🛍 Storefront: https://shop.example.org/s/tea",
        "📦 My orders: type orders here",
        "🎟 My coupons: type coupons here",
        "💬 Talk to a person: just write in this chat; the shop's staff answer here."]
    assert "Tea &lt;House&gt;" in content["formatted_body"]  # the shop's name is text
    assert content[menu.MENU_KEY] == {"shop": "tea", "kind": "dm", "version": 4}
    orders = menu.dm_menu_content(tea_menu(orders_url="https://shop.example.org/me/orders"), 1)
    assert "📦 My orders: https://shop.example.org/me/orders" in orders["body"]


def test_an_edit_replaces_the_menu_and_the_digest_follows_what_it_shows() -> None:
    new = menu.dm_menu_content(tea_menu(shop_name="Tea Garden"), 5)
    edit = menu.edit_content("$menu", new)
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$menu"}
    assert edit["m.new_content"] == new and edit["body"].startswith("* 📌 Tea Garden")
    assert menu.digest(tea_menu()) == menu.digest(tea_menu())
    assert menu.digest(tea_menu()) != menu.digest(tea_menu(shop_name="Tea Garden"))


def test_links_a_shop_may_add() -> None:
    found = menu.parse_links([{"label": "Size guide", "url": "https://tea.example/sizes"}],
                             POLICY)
    assert found == (menu.MenuLink("Size guide", "https://tea.example/sizes"),)
    assert menu.links_from_json(menu.links_json(found)) == found
    with pytest.raises(links.LinkRefused, match="evil.example"):
        menu.parse_links([{"label": "x", "url": "https://evil.example/"}], POLICY)
    with pytest.raises(links.LinkRefused):  # a link in the label is a link too
        menu.parse_links([{"label": "see evil.example", "url": "https://tea.example/"}],
                         POLICY)
    with pytest.raises(InvalidInput, match="https"):
        menu.parse_links([{"label": "x", "url": "http://tea.example/"}], POLICY)
    with pytest.raises(InvalidInput, match="at most 5"):
        menu.parse_links([{"label": "x", "url": "https://tea.example/"}] * 6, POLICY)
    with pytest.raises(InvalidInput, match="list"):
        menu.parse_links({"label": "x"}, POLICY)


def _state(version: str, creator: str, users: dict, **levels: object) -> list[dict]:
    return [{"type": "m.room.create", "sender": creator, "content": {"room_version": version}},
            {"type": "m.room.power_levels", "content": {"users": users, **levels}}]


def test_who_may_pin() -> None:
    # A room the shop created in version 12: creators have unlimited power.
    assert menu.can_pin(_state("12", SHOP, {}), SHOP)
    # A buyer's trusted private chat: the shop was given the creator's level.
    assert menu.can_pin(_state("10", "@b:x", {"@b:x": 100, SHOP: 100}), SHOP)
    # A plain private chat: the shop at 0, state events need 50.
    assert not menu.can_pin(_state("12", "@b:x", {}, state_default=50), SHOP)
    # Pinning opened to everyone.
    assert menu.can_pin(_state("12", "@b:x", {}, events={"m.room.pinned_events": 0}), SHOP)
    assert menu.pinned_with(["$a"], "$menu") == ["$menu", "$a"]
    assert menu.pinned_with(["$menu", "$a"], "$menu") is None


def test_the_widget_and_the_qr_code() -> None:
    widget = menu.widget_content(tea_menu(), "https://shop.example.org/", SHOP)
    assert widget["url"] == "https://shop.example.org/s/tea?widget=1"
    assert (widget["id"], widget["type"], widget["creatorUserId"]) == \
        (menu.WIDGET_ID, "m.custom", SHOP)
    link = qr.channel_link("#shop_tea:example.org")
    assert link == "https://matrix.to/#/%23shop_tea:example.org"
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.png(link))))
    assert read.text == link
    assert qr.counted_link("https://shop.example.org/", "tea") == \
        "https://shop.example.org/s/tea/follow?from=poster"
    assert qr.svg(link, inline=True).startswith("<svg")


def test_what_the_reward_offers() -> None:
    reward = rows.Reward(merchant_slug="tea", coupon_id=1, given=1, missed=0, active=True,
                         title="10% off your first order", stock=2, expires_at=2_000,
                         percent_off=10, amount_off=None)
    assert follow_reward.offer_text(reward, 1_000) == "10% off your first order"
    assert follow_reward.offer_text(reward, 3_000) == ""  # expired
    sold_out = rows.Reward(**{**reward.__dict__, "given": 2})
    assert follow_reward.offer_text(sold_out, 1_000) == ""
    view = follow_reward.reward_view(sold_out, 1_000)
    assert view and (view["left"], view["out_of_stock"], view["expired"]) == (0, True, False)
    assert follow_reward.discount_text(None, "5.00") == "5.00 off"


# -- the tables, on both engines ----------------------------------------------------------------

@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    try:
        await store.insert_merchant(database, store.Merchant(
            slug=MerchantSlug("tea"), name="Tea", description="", website="",
            mxid=UserID(SHOP), owner_mxid=UserID("@owner:localhost"), status="approved",
            created_at=1))
        await store.insert_channel(database, store.Channel(
            room_id=RoomID("!tea:localhost"), merchant_slug=MerchantSlug("tea"),
            alias="#shop_tea:localhost", name="Tea", is_primary=True, welcome_event_id=None))
        yield database
    finally:
        await database.stop()


async def test_the_last_code_is_taken_once(db: Database) -> None:
    coupon = await coupon_rows.insert_coupon(db, "tea", "Gift", 2, 10_000, "@owner:localhost")
    await rows.put_reward(db, "tea", coupon, "@owner:localhost")
    taken = [await rows.take_one(db, "tea", 1_000) for _ in range(3)]
    assert taken == [coupon, coupon, None]
    assert await rows.take_one(db, "tea", 20_000) is None  # expired
    await rows.count_missed(db, "tea")
    reward = await rows.reward_of(db, "tea")
    assert reward and (reward.given, reward.missed, reward.active) == (2, 1, True)
    assert await rows.stop_reward(db, "tea") and not await rows.stop_reward(db, "tea")


async def test_first_follows_their_source_and_scans(db: Database) -> None:
    await rows.put_visit(db, "tea", "@a:x", "poster", 5_000)
    async with transaction(db) as conn:
        assert await rows.take_visit(conn, "tea", "@a:x", 6_000) is None  # too old
    await rows.put_visit(db, "tea", "@a:x", "poster", 5_000)
    assert await rows.take_visit(db, "tea", "@a:x", 1_000) == "poster"
    assert await rows.take_visit(db, "tea", "@a:x", 1_000) is None  # used once
    for user, source in (("@a:x", "poster"), ("@b:x", "elsewhere"), ("@c:x", "elsewhere")):
        await rows.insert_new_follower(db, rows.NewFollower("tea", user, 1, source, "none",
                                                            None))
    assert await rows.follows_by_source(db, "tea") == {"poster": 1, "elsewhere": 2}
    for _ in range(2):
        await rows.add_scan(db, "tea", "2026-12-01", "poster")
    await rows.add_scan(db, "tea", "2026-12-02", "poster")
    assert await rows.scan_count(db, "tea", "poster") == 3


async def test_one_menu_per_room_and_the_stale_ones(db: Database) -> None:
    assert await menu_rows.add_pinned(db, "!dm:x", "tea", "dm")
    assert not await menu_rows.add_pinned(db, "!dm:x", "tea", "dm")
    assert await menu_rows.behind(db, "tea", 2) == []  # not sent yet
    await menu_rows.set_sent(db, "!dm:x", "$menu", 1)
    await menu_rows.set_pinned(db, "!dm:x", "yes")
    [stale] = await menu_rows.behind(db, "tea", 2)
    assert (stale.event_id, stale.version) == ("$menu", 1)
    await menu_rows.set_version(db, "!dm:x", 2)
    await menu_rows.set_version(db, "!dm:x", 1)  # never back
    assert await menu_rows.behind(db, "tea", 2) == []
    assert await menu_rows.counts(db, "tea") == {"dms": 1, "pinned": 1}
    await menu_rows.put_shop_menu(db, "tea", "[]", 3, "abc")
    row = await menu_rows.shop_menu(db, "tea")
    assert row and (row.version, row.digest) == (3, "abc")
