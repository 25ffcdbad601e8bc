"""A user's Circle read as one feed: their friends' recommendations and the posts of the
channels they follow, newest first, each with its shop, price, recommender and links. The
web page `/circle`, the API's feed and the shop bot's daily digest read it; none copies a
post per user. A page is one database statement (`feed_storage.py`), paged by a cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from appservices.commerce.catalog import products
from appservices.commerce.circle import feed_storage, rules
from appservices.commerce.circle import storage as rows
from appservices.commerce.quotas import DAY_MS
from mercato.db import Database

MAX_ITEMS = 200


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the next page holds what is older than this item."""

    at: int
    event_id: str


def encode_cursor(cursor: Cursor) -> str:
    raw = f"{cursor.at}:{cursor.event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor | None:
    """The cursor a page's "Older" link carries, or None for anything else (the first page)."""
    if not text or len(text) > 400:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    at, sep, event_id = raw.partition(":")
    if not sep or not at.isdigit() or not event_id.startswith("$"):
        return None
    return Cursor(int(at), event_id)


@dataclass(frozen=True)
class Entry:
    """A feed item with what the web page shows beside it: the shop's verification, the sale
    price, whether there is a picture, and a coupon post's coupon."""

    item: rules.FeedItem
    verified: bool = False
    original_price: str | None = None
    image: bool = False  # the product's picture (its thumbnail route), or the post's
    campaign_id: int | None = None
    coupon_id: int | None = None
    stock: str | None = None
    post_link: str = ""  # the channel post a recommendation quotes, or the post itself
    detail: str = ""  # a post's discount and text, or the quoted post's first line


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    older: Cursor | None  # None on the last page


def _recommendation(row: dict[str, Any], public_url: str) -> Entry:
    sku = row["sku"]
    source = rules.matrix_to(row["source_room_id"], row["source_event_id"]) \
        if row["source_room_id"] and row["source_event_id"] else ""
    title = row["title"] or sku or (row["quote"].splitlines() or ["a post"])[0][:120]
    page = products.product_page_url(public_url, row["merchant_slug"], sku) if sku else source
    item = rules.FeedItem(
        kind="recommendation", at=int(row["at"]), room_id=row["room_id"],
        event_id=row["event_id"], shop_slug=row["merchant_slug"], shop_name=row["shop_name"],
        title=title, price=row["price"], currency=row["currency"], sku=sku,
        recommended_by=row["recommended_by"], recommender_name=row["recommender_name"],
        note=row["note"] or "", page_url=page)
    on_sale = bool(row["original_price"] and row["price"]) and \
        Decimal(row["original_price"]) > Decimal(row["price"])
    return Entry(item=item, verified=row["verified_at"] is not None,
                 original_price=row["original_price"] if on_sale else None,
                 image=bool(row["image_mxc"]), stock=row["stock"], post_link=source)


def _post(row: dict[str, Any]) -> Entry:
    fields = json.loads(row["fields"]) if row["fields"] else {}
    title = str(fields.get("title") or fields.get("text") or "A post")[:120]
    link = rules.matrix_to(row["room_id"], row["event_id"])
    item = rules.FeedItem(
        kind="post", at=int(row["at"]), room_id=row["room_id"], event_id=row["event_id"],
        shop_slug=row["merchant_slug"], shop_name=row["shop_name"], title=title,
        price=fields.get("price"), currency=fields.get("currency"), page_url=link)
    return Entry(item=item, verified=row["verified_at"] is not None,
                 image=bool(row["campaign_image"]),
                 campaign_id=int(row["campaign_id"]) if row["campaign_id"] else None,
                 coupon_id=int(row["coupon_id"]) if row["coupon_id"] else None,
                 post_link=link, detail=" · ".join(
                     str(fields[k])[:300] for k in ("discount", "text")
                     if fields.get(k) and fields[k] != title))


async def feed_page(db: Database, user_id: str, *, older_than: Cursor | None = None,
                    since_ms: int = 0, limit: int = 50, public_url: str = "") -> Page:
    """A page of the user's Circle, newest first: `limit` items older than the cursor (or
    the newest), and the cursor of the next page if there is one."""
    limit = max(1, min(limit, MAX_ITEMS))
    cursor = older_than or Cursor(feed_storage.NEWEST, "")
    found = await feed_storage.feed_rows(db, user_id, since_ms=since_ms, before_at=cursor.at,
                                         before_event=cursor.event_id, limit=limit + 1)
    entries = [_recommendation(r, public_url) if r["kind"] == "recommendation" else _post(r)
               for r in found[:limit]]
    older = Cursor(entries[-1].item.at, entries[-1].item.event_id) \
        if len(found) > limit else None
    return Page(entries=entries, older=older)


async def feed(db: Database, user_id: str, *, since_ms: int = 0, limit: int = 50,
               public_url: str = "") -> list[rules.FeedItem]:
    """The user's Circle after `since_ms`, newest first, at most `limit` items."""
    page = await feed_page(db, user_id, since_ms=since_ms, limit=limit, public_url=public_url)
    return [entry.item for entry in page.entries]


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
