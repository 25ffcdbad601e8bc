"""The commerce tables, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.shops import storage as store
from mercato.db import Database, UpgradeTable, open_database
from mercato.types import MerchantSlug, RoomID, UserID

DEMO = MerchantSlug("demo")
OTHER = MerchantSlug("other")
BUYER = "@buyer:localhost"
REMOTE_BUYER = "@fan:other.example"


def merchant(slug: MerchantSlug = DEMO, name: str = "Demo Shop") -> store.Merchant:
    return store.Merchant(
        slug=slug, name=name, description="Shoes and socks", website="https://shop.example",
        mxid=UserID(f"@shop_{slug}:localhost"), owner_mxid=UserID("@merchant:localhost"),
        status="active", created_at=1_700_000_000_000)


def core(shop: store.Merchant | None) -> tuple[object, ...] | None:
    """What a shop was registered with (later columns have their own defaults)."""
    if shop is None:
        return None
    return (shop.slug, shop.name, shop.description, shop.website, shop.mxid, shop.owner_mxid,
            shop.status, shop.created_at)


def channel(room: str, slug: MerchantSlug = DEMO, *, primary: bool = True) -> store.Channel:
    return store.Channel(room_id=RoomID(room), merchant_slug=slug,
                         alias=f"#shop_{slug}_{room[1:4]}:localhost", name="Channel",
                         is_primary=primary, welcome_event_id=None)


# The API-key functions are moving from store to db.access (merchant accounts, v02);
# these two helpers let the tests run on either until that settles.


async def add_api_key(db: Database, slug: MerchantSlug, key: str) -> None:
    if hasattr(store, "store_api_key"):
        await store.store_api_key(db, slug, key, "ci")
    else:
        await store.insert_api_key(db, slug, key, key_id=store.hash_api_key(key)[:8], label="ci",
                                   role="editor", created_by="@merchant:localhost")


async def merchant_for_api_key(db: Database, key: str) -> store.Merchant | None:
    if hasattr(store, "merchant_for_api_key"):
        return await store.merchant_for_api_key(db, key)
    found = await store.lookup_api_key(db, key)
    return found[0] if found else None


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()  # runs the upgrades
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
async def shop(db: Database) -> store.Merchant:
    demo = merchant()
    await store.insert_merchant(db, demo)
    await store.insert_channel(db, channel("!main:localhost"))
    await store.insert_channel(db, channel("!deals:localhost", primary=False))
    return demo


async def test_fresh_database_reaches_the_latest_version(db: Database) -> None:
    latest = len(upgrade_table.upgrades)
    assert latest >= 1
    rows = await db.fetch("SELECT version FROM commerce_version")
    assert [row["version"] for row in rows] == [latest]
    for table in ("merchant", "channel", "follower", "api_key"):
        assert await db.table_exists(table), table


async def test_upgrading_again_changes_nothing(db: Database, shop: store.Merchant) -> None:
    await upgrade_table.upgrade(db)
    assert await db.fetchval("SELECT version FROM commerce_version") == \
        len(upgrade_table.upgrades)
    assert core(await store.get_merchant(db, DEMO)) == core(shop)


async def test_a_version_1_database_upgrades_step_by_step(database_url: str) -> None:
    first_only = UpgradeTable(version_table_name="commerce_version", database_name="commerce")
    first_only.upgrades = upgrade_table.upgrades[:1]
    old = open_database(database_url, first_only, "commerce")
    await old.start()
    try:
        assert await old.fetchval("SELECT version FROM commerce_version") == 1
        await old.execute(
            "INSERT INTO merchant (slug, name, description, website, mxid, owner_mxid, status,"
            " created_at) VALUES ('demo', 'Demo Shop', 'Shoes and socks',"
            " 'https://shop.example', '@shop_demo:localhost', '@merchant:localhost', 'active',"
            " 1700000000000)")
    finally:
        await old.stop()
    db = open_database(database_url, upgrade_table, "commerce")
    await db.start()
    try:
        assert await db.fetchval("SELECT version FROM commerce_version") == \
            len(upgrade_table.upgrades)
        assert core(await store.get_merchant(db, DEMO)) == core(merchant())
    finally:
        await db.stop()


async def test_database_belongs_to_commerce(db: Database) -> None:
    assert await db.fetchval("SELECT owner FROM database_owner") == "mercato-commerce"


async def test_merchant_is_read_back(db: Database, shop: store.Merchant) -> None:
    assert core(await store.get_merchant(db, DEMO)) == core(shop)
    assert core(await store.get_merchant_by_mxid(db, "@shop_demo:localhost")) == core(shop)
    assert await store.get_merchant(db, MerchantSlug("nobody")) is None
    assert await store.get_merchant_by_mxid(db, "@shop_nobody:localhost") is None


async def test_merchants_are_listed_by_slug_and_status(db: Database, shop: store.Merchant) -> None:
    pending = replace(merchant(MerchantSlug("aardvark"), "A shop"), status="pending")
    await store.insert_merchant(db, pending)
    assert [m.slug for m in await store.list_merchants(db)] == ["aardvark", "demo"]
    assert [core(m) for m in await store.list_merchants(db, "active")] == [core(shop)]
    assert [core(m) for m in await store.list_merchants(db, "pending")] == [core(pending)]


async def test_channels_of_a_merchant_primary_first(db: Database, shop: store.Merchant) -> None:
    channels = await store.channels_of(db, DEMO)
    assert [c.room_id for c in channels] == ["!main:localhost", "!deals:localhost"]
    main = await store.get_channel(db, "!main:localhost")
    assert main == channel("!main:localhost")
    assert main is not None and main.is_primary
    assert await store.get_channel(db, "!unknown:localhost") is None
    assert await store.channels_of(db, OTHER) == []


async def test_welcome_event_is_recorded(db: Database, shop: store.Merchant) -> None:
    await store.set_welcome_event(db, "!main:localhost", "$welcome")
    main = await store.get_channel(db, "!main:localhost")
    assert main is not None and main.welcome_event_id == "$welcome"


async def test_follow_is_idempotent_and_unfollow_works(db: Database, shop: store.Merchant) -> None:
    await store.add_follower(db, "!main:localhost", BUYER)
    await store.add_follower(db, "!main:localhost", BUYER)
    assert await store.follower_count(db, DEMO) == 1
    assert await db.fetchval("SELECT COUNT(*) FROM follower") == 1
    await store.remove_follower(db, "!main:localhost", BUYER)
    assert await store.follower_count(db, DEMO) == 0
    await store.remove_follower(db, "!main:localhost", BUYER)  # unfollowing twice is fine
    assert await store.follower_count(db, DEMO) == 0


async def test_follower_count_counts_people_not_memberships(
    db: Database, shop: store.Merchant
) -> None:
    await store.add_follower(db, "!main:localhost", BUYER)
    await store.add_follower(db, "!deals:localhost", BUYER)
    assert await store.follower_count(db, DEMO) == 1
    await store.add_follower(db, "!deals:localhost", REMOTE_BUYER)
    assert await store.follower_count(db, DEMO) == 2
    await store.remove_follower(db, "!main:localhost", BUYER)
    assert await store.follower_count(db, DEMO) == 2  # still follows the deals channel


async def test_followers_of_another_shop_do_not_count(db: Database, shop: store.Merchant) -> None:
    await store.insert_merchant(db, merchant(OTHER, "Other"))
    await store.insert_channel(db, channel("!oth:localhost", OTHER))
    await store.add_follower(db, "!oth:localhost", BUYER)
    await store.add_follower(db, "!oth:localhost", REMOTE_BUYER)
    await store.add_follower(db, "!main:localhost", BUYER)
    assert await store.follower_count(db, DEMO) == 1
    assert await store.follower_count(db, OTHER) == 2
    assert await store.follower_count(db, MerchantSlug("nobody")) == 0


async def test_api_key_finds_its_merchant_only(db: Database, shop: store.Merchant) -> None:
    await store.insert_merchant(db, merchant(OTHER, "Other"))
    await add_api_key(db, DEMO, "mk_demo_secret_key")
    await add_api_key(db, OTHER, "mk_other_secret_key")
    assert core(await merchant_for_api_key(db, "mk_demo_secret_key")) == core(shop)
    assert core(await merchant_for_api_key(db, "mk_other_secret_key")) == \
        core(merchant(OTHER, "Other"))
    assert await merchant_for_api_key(db, "mk_demo_secret_kez") is None
    assert await merchant_for_api_key(db, "") is None


async def test_api_key_is_stored_hashed(db: Database, shop: store.Merchant) -> None:
    await add_api_key(db, DEMO, "mk_demo_secret_key")
    stored = await db.fetchval("SELECT key_hash FROM api_key")
    assert "mk_demo_secret_key" not in stored
    assert stored == store.hash_api_key("mk_demo_secret_key")
    await add_api_key(db, DEMO, "mk_demo_secret_key")  # idempotent
    assert await db.fetchval("SELECT COUNT(*) FROM api_key") == 1


async def test_revoked_api_key_is_refused(db: Database, shop: store.Merchant) -> None:
    await add_api_key(db, DEMO, "mk_demo_secret_key")
    await add_api_key(db, DEMO, "mk_demo_second_key")
    await db.execute("UPDATE api_key SET revoked_at=$1 WHERE key_hash=$2",
                     int(time.time() * 1000), store.hash_api_key("mk_demo_secret_key"))
    assert await merchant_for_api_key(db, "mk_demo_secret_key") is None
    assert core(await merchant_for_api_key(db, "mk_demo_second_key")) == core(shop)


async def test_rows_must_reference_existing_merchants_and_channels(db: Database) -> None:
    # Foreign keys hold on both engines (mautrix turns them on for SQLite).
    with pytest.raises(Exception, match="(?i)foreign key"):
        await store.insert_channel(db, channel("!orphan:localhost", MerchantSlug("ghost")))
    with pytest.raises(Exception, match="(?i)foreign key"):
        await store.add_follower(db, "!nowhere:localhost", BUYER)


async def test_merchant_mxid_is_unique(db: Database, shop: store.Merchant) -> None:
    clash = replace(merchant(OTHER), mxid=shop.mxid)
    with pytest.raises(Exception, match="(?i)unique"):
        await store.insert_merchant(db, clash)
    assert [m.slug for m in await store.list_merchants(db)] == ["demo"]
