"""A user's Circle read as one feed: their friends' recommendations and the posts of the
channels they follow, newest first, each with its shop, price, recommender and links. The
web page `/circle` and the shop bot's daily digest read it; neither copies a post per user.
"""

from __future__ import annotations

import json

from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.circle import rules
from appservices.commerce.circle import storage as rows
from appservices.commerce.quotas import DAY_MS
from appservices.commerce.shops import storage as store
from mercato.db import Database

MAX_ITEMS = 200


async def _recommendations(db: Database, user_id: str, since_ms: int, limit: int,
                           public_url: str) -> list[rules.FeedItem]:
    rooms = [c.room_id for c in await rows.circles_joined_by(db, user_id) if c.room_id]
    found = await rows.in_rooms_since(db, rooms, since_ms, limit)
    names = {}
    items = []
    for rec in found:
        if rec.merchant_slug not in names:
            merchant = await store.get_merchant(db, store.MerchantSlug(rec.merchant_slug))
            names[rec.merchant_slug] = merchant.name if merchant else rec.merchant_slug
        title = rec.sku or (rec.quote.splitlines() or ["a post"])[0][:120]
        page = products.product_page_url(public_url, rec.merchant_slug, rec.sku) if rec.sku \
            else rules.matrix_to(rec.source_room_id or "", rec.source_event_id or "")
        product = await _product(db, rec.merchant_slug, rec.sku)
        items.append(rules.FeedItem(
            kind="recommendation", at=rec.created_at, room_id=rec.room_id,
            event_id=rec.event_id or "", shop_slug=rec.merchant_slug,
            shop_name=names[rec.merchant_slug], title=product[0] if product else title,
            price=product[1] if product else None, currency=product[2] if product else None,
            sku=rec.sku, recommended_by=rec.owner_id, recommender_name=rec.recommender_name,
            note=rec.note, page_url=page))
    return items


async def _product(db: Database, slug: str, sku: str | None) -> tuple[str, str, str] | None:
    product = await product_rows.get_product(db, slug, sku) if sku else None
    return (product.title, product.price, product.currency) if product else None


async def _posts(db: Database, user_id: str, since_ms: int, limit: int) -> list[rules.FeedItem]:
    channels = await rows.followed_channels(db, user_id)
    items = []
    for post in await rows.posts_in_rooms_since(db, channels, since_ms, limit):
        fields = json.loads(post["fields"]) if post["fields"] else {}
        title = str(fields.get("title") or fields.get("text") or "A post")[:120]
        items.append(rules.FeedItem(
            kind="post", at=int(post["sent_at"]), room_id=post["room_id"],
            event_id=post["event_id"], shop_slug=post["merchant_slug"],
            shop_name=post["name"], title=title, price=fields.get("price"),
            currency=fields.get("currency"),
            page_url=rules.matrix_to(post["room_id"], post["event_id"])))
    return items


async def feed(db: Database, user_id: str, *, since_ms: int = 0, limit: int = 50,
               public_url: str = "") -> list[rules.FeedItem]:
    """The user's Circle after `since_ms`, newest first, at most `limit` items."""
    limit = max(1, min(limit, MAX_ITEMS))
    return rules.merge_feed(await _recommendations(db, user_id, since_ms, limit, public_url),
                            await _posts(db, user_id, since_ms, limit), limit=limit)


async def next_digest(db: Database, user_id: str, now_ms: int,
                      public_url: str = "") -> tuple[str, str] | None:
    """(DM room, text) of the user's digest if one is due now, marked sent; else None.

    At most one a day, only with something new since the last one (or since a day before
    the first). Marked sent here, in one statement that only one caller wins: a digest
    may be lost if the bot stops before sending it, never sent twice.
    """
    circle = await rows.get_circle(db, user_id)
    if circle is None or circle.digest_room_id is None:
        return None
    since = circle.digest_last_at if circle.digest_last_at is not None else \
        now_ms - DAY_MS
    items = await feed(db, user_id, since_ms=since, limit=11, public_url=public_url)
    if not rules.digest_due(circle.digest_last_at, now_ms, len(items)):
        return None
    if not await rows.mark_digest_sent(db, user_id, now_ms, circle.digest_last_at):
        return None
    shown = items[:10]
    return circle.digest_room_id, rules.digest_text(shown, len(items) - len(shown))
