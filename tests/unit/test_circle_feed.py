"""The Circle's feed read a page at a time, on SQLite and PostgreSQL: friends'
recommendations and followed channels' posts merged newest first by one statement, each item
once across pages however the cursor falls, a stranger's feed empty; and the cursor the
"Older" link carries, read back or refused without a server."""

from __future__ import annotations

from appservices.commerce.campaigns import storage as campaign_rows
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.circle import feed, operations
from appservices.commerce.circle import storage as rows
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal
from mercato.db import Database
from mercato.types import RoomID
from tests.unit.test_circle_storage import (  # noqa: F401  (db is a fixture)
    DEMO,
    KARI,
    OLA,
    Friends,
    Rooms,
    Service,
    _deliver,
    db,
)

CHANNEL = RoomID("!channel-demo")


async def _sent_post(db: Database, title: str, sent_at: int, event_id: str) -> None:  # noqa: F811
    campaign = await campaign_rows.insert_campaign(
        db, slug=DEMO, kind="text", fields={"title": title, "text": title}, image_mxc="",
        image_info={}, silent=False, channel_ids=[CHANNEL], coupon_id=None,
        created_by="@merchant:localhost")
    await db.execute("INSERT INTO outbox (campaign_id, room_id, state, event_id, sent_at)"
                     " VALUES ($1,$2,'sent',$3,$4)", campaign, CHANNEL, event_id, sent_at)


async def test_pages_merge_posts_and_recommendations_newest_first(db: Database) -> None:  # noqa: F811
    service = Service(db)
    rooms = Rooms(service)
    rooms.register(service.messages)
    for sku, title in (("mug", "Mug"), ("pot", "Teapot"), ("tin", "Tea tin")):
        await catalog.create_product(db, service, Principal(kind="operator"), DEMO, {  # type: ignore[arg-type]
            "sku": sku, "title": title, "price": "10.00", "original_price": "12.00",
            "currency": "EUR"})
    friends = Friends({OLA: [KARI], KARI: []})
    await operations.opt_in(db, rooms, friends, KARI)
    await operations.opt_in(db, rooms, friends, OLA)
    await rows.set_member(db, OLA, KARI, "joined", "contacts")
    for n, sku in enumerate(("mug", "pot", "tin")):
        await operations.recommend_product(db, rooms, OLA, DEMO, sku, f"line {n}",
                                           txn_id=f"t{n}", per_day=20, now_ms=store.now_ms())
    await _deliver(service)
    await store.insert_channel(db, store.Channel(
        room_id=CHANNEL, merchant_slug=DEMO, alias="#shop_demo:localhost", name="Demo",
        is_primary=True, welcome_event_id=None))
    await store.add_follower(db, CHANNEL, KARI)
    await _sent_post(db, "Oldest post", 1, "$old")
    await _sent_post(db, "Newest post", 2**45, "$new")

    seen = []
    page = await feed.feed_page(db, KARI, limit=2)
    while True:
        seen += [(e.item.kind, e.item.title) for e in page.entries]
        if page.older is None:
            break
        cursor = feed.decode_cursor(feed.encode_cursor(page.older))
        assert cursor == page.older
        page = await feed.feed_page(db, KARI, older_than=cursor, limit=2)
    assert seen[0] == ("post", "Newest post") and seen[-1] == ("post", "Oldest post")
    assert sorted(t for k, t in seen if k == "recommendation") == ["Mug", "Tea tin", "Teapot"]
    assert len(seen) == 5

    first = (await feed.feed_page(db, KARI, limit=5)).entries
    mug = next(e for e in first if e.item.sku == "mug")
    assert mug.item.recommended_by == OLA and mug.item.note == "line 0"
    assert mug.original_price == "12.00" and mug.item.price == "10.00"
    assert await feed.feed(db, "@stranger:localhost") == []
    assert [i.title for i in await feed.feed(db, KARI, since_ms=2**44)] == ["Newest post"]


def test_a_cursor_is_read_back_or_refused() -> None:
    cursor = feed.Cursor(1_700_000_000_123, "$abc/def+ghi")
    assert feed.decode_cursor(feed.encode_cursor(cursor)) == cursor
    for bad in ("", "not base64!", "MTIz", "eDokYQ", "A" * 500):
        assert feed.decode_cursor(bad) is None
