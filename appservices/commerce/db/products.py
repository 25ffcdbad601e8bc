"""Product rows, posted cards and price-drop alerts."""

from __future__ import annotations

import json
from typing import Any

from appservices.commerce.db.store import now_ms
from appservices.commerce.products import Product

_COLUMNS = ("merchant_slug, sku, title, description, price, currency, original_price, "
            "image_mxc, image_info, url, stock, tags, created_at, updated_at")


def _product(row: Any) -> Product:
    data = {k: row[k] for k in row.keys()}
    data["image_info"] = json.loads(data["image_info"])
    data["tags"] = json.loads(data["tags"])
    return Product(**data)


async def get_product(db: Any, slug: str, sku: str) -> Product | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM product WHERE merchant_slug=$1 AND sku=$2",
                            slug, sku)
    return _product(row) if row else None


async def list_products(db: Any, slug: str, *, query: str = "", limit: int = 100,
                        after_sku: str = "") -> list[Product]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM product WHERE merchant_slug=$1 AND sku>$2"
        " AND (LOWER(title) LIKE $3 OR LOWER(sku) LIKE $3 OR LOWER(tags) LIKE $3)"
        " ORDER BY sku LIMIT $4", slug, after_sku, f"%{query.casefold()}%", limit)
    return [_product(r) for r in rows]


async def count_products(db: Any, slug: str) -> int:
    return await db.fetchval("SELECT COUNT(*) FROM product WHERE merchant_slug=$1", slug)


async def upsert_product(db: Any, slug: str, fields: dict[str, Any]) -> bool:
    """Create or replace a product; returns True if it was new. `fields` is validated."""
    now = now_ms()
    existing = await db.fetchval("SELECT 1 FROM product WHERE merchant_slug=$1 AND sku=$2",
                                 slug, fields["sku"])
    values = (fields["title"], fields.get("description", ""), fields["price"],
              fields["currency"], fields.get("original_price"), fields.get("image_mxc", ""),
              json.dumps(fields.get("image_info", {})), fields.get("url", ""),
              fields.get("stock", "in_stock"), json.dumps(fields.get("tags", [])))
    if existing:
        await db.execute(
            "UPDATE product SET title=$3, description=$4, price=$5, currency=$6,"
            " original_price=$7, image_mxc=$8, image_info=$9, url=$10, stock=$11, tags=$12,"
            " updated_at=$13 WHERE merchant_slug=$1 AND sku=$2",
            slug, fields["sku"], *values, now)
        return False
    await db.execute(
        f"INSERT INTO product ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
        slug, fields["sku"], *values, now, now)
    return True


async def delete_product(db: Any, slug: str, sku: str) -> bool:
    existing = await db.fetchval("SELECT 1 FROM product WHERE merchant_slug=$1 AND sku=$2",
                                 slug, sku)
    if existing:
        await db.execute("DELETE FROM product WHERE merchant_slug=$1 AND sku=$2", slug, sku)
        await db.execute("DELETE FROM price_alert WHERE merchant_slug=$1 AND sku=$2", slug, sku)
    return bool(existing)


async def record_card(db: Any, event_id: str, room_id: str, product: Product) -> None:
    await db.execute(
        "INSERT INTO card (event_id, room_id, merchant_slug, sku, price, stock, sent_at)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (event_id) DO NOTHING", event_id, room_id,
        product.merchant_slug, product.sku, product.price, product.stock, now_ms())


async def cards_of(db: Any, slug: str, sku: str) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT event_id, room_id, price, stock FROM card"
                          " WHERE merchant_slug=$1 AND sku=$2", slug, sku)
    return [{k: r[k] for k in r.keys()} for r in rows]


async def card_of_event(db: Any, event_id: str) -> tuple[str, str] | None:
    row = await db.fetchrow("SELECT merchant_slug, sku FROM card WHERE event_id=$1", event_id)
    return (row["merchant_slug"], row["sku"]) if row else None


async def set_card_state(db: Any, event_id: str, price: str, stock: str) -> None:
    await db.execute("UPDATE card SET price=$1, stock=$2 WHERE event_id=$3", price, stock,
                     event_id)


async def add_alert(db: Any, slug: str, sku: str, user_id: str, price: str) -> bool:
    existing = await db.fetchval(
        "SELECT 1 FROM price_alert WHERE merchant_slug=$1 AND sku=$2 AND user_id=$3",
        slug, sku, user_id)
    if existing:
        await db.execute("UPDATE price_alert SET price=$1, notified_at=NULL WHERE"
                         " merchant_slug=$2 AND sku=$3 AND user_id=$4", price, slug, sku, user_id)
        return False
    await db.execute("INSERT INTO price_alert (merchant_slug, sku, user_id, price, created_at)"
                     " VALUES ($1,$2,$3,$4,$5)", slug, sku, user_id, price, now_ms())
    return True


async def remove_alert(db: Any, slug: str, sku: str, user_id: str) -> bool:
    existing = await db.fetchval(
        "SELECT 1 FROM price_alert WHERE merchant_slug=$1 AND sku=$2 AND user_id=$3",
        slug, sku, user_id)
    await db.execute("DELETE FROM price_alert WHERE merchant_slug=$1 AND sku=$2 AND user_id=$3",
                     slug, sku, user_id)
    return bool(existing)


async def alerts_of_user(db: Any, user_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT merchant_slug, sku, price, created_at, notified_at"
                          " FROM price_alert WHERE user_id=$1 ORDER BY created_at", user_id)
    return [{k: r[k] for k in r.keys()} for r in rows]


async def open_alerts(db: Any, slug: str, sku: str) -> list[str]:
    rows = await db.fetch("SELECT user_id FROM price_alert WHERE merchant_slug=$1 AND sku=$2"
                          " AND notified_at IS NULL", slug, sku)
    return [r["user_id"] for r in rows]


async def mark_alert_sent(db: Any, slug: str, sku: str, user_id: str) -> bool:
    """True only for the caller that flips it: a subscriber is told once."""
    flipped = await db.fetchval(
        "UPDATE price_alert SET notified_at=$1 WHERE merchant_slug=$2 AND sku=$3 AND user_id=$4"
        " AND notified_at IS NULL RETURNING user_id", now_ms(), slug, sku, user_id)
    return flipped is not None
