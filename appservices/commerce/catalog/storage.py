"""Product rows, posted cards and price-drop alerts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from appservices.commerce.catalog.products import Product, stock_for_quantity
from appservices.commerce.shops.storage import now_ms

_COLUMNS = ("merchant_slug, sku, title, description, price, currency, original_price, "
            "image_mxc, image_info, url, stock, tags, created_at, updated_at, quantity")


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
    quantity = fields.get("quantity")
    values = (fields["title"], fields.get("description", ""), fields["price"],
              fields["currency"], fields.get("original_price"), fields.get("image_mxc", ""),
              json.dumps(fields.get("image_info", {})), fields.get("url", ""),
              stock_for_quantity(fields.get("stock", "in_stock"), quantity),
              json.dumps(fields.get("tags", [])))
    if existing:
        await db.execute(
            "UPDATE product SET title=$3, description=$4, price=$5, currency=$6,"
            " original_price=$7, image_mxc=$8, image_info=$9, url=$10, stock=$11, tags=$12,"
            " updated_at=$13, quantity=CASE WHEN $15 THEN $14 ELSE quantity END"
            " WHERE merchant_slug=$1 AND sku=$2",  # an import without quantities keeps them
            slug, fields["sku"], *values, now, quantity, "quantity" in fields)
        return False
    await db.execute(
        f"INSERT INTO product ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,"
        "$15)", slug, fields["sku"], *values, now, now, quantity)
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


async def record_shared_card(db: Any, event_id: str, room_id: str, slug: str, sku: str,
                             price: str, stock: str) -> None:
    """A card the outbox sent, with the facts it shows (from the card's own content)."""
    await db.execute(
        "INSERT INTO card (event_id, room_id, merchant_slug, sku, price, stock, sent_at)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (event_id) DO NOTHING", event_id, room_id,
        slug, sku, price, stock, now_ms())


async def shares_since(db: Any, slug: str, since_ms: int) -> tuple[int, int | None]:
    """The shop's card shares after `since_ms`: (count, the oldest one's time)."""
    row = await db.fetchrow("SELECT COUNT(*) AS n, MIN(sent_at) AS oldest FROM card"
                            " WHERE merchant_slug=$1 AND sent_at > $2", slug, since_ms)
    return row["n"], row["oldest"]


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


async def fix_card_room(db: Any, alias: str, room_id: str) -> None:
    """Cards an older Mercato stored under an alias get the room ID it resolved to."""
    await db.execute("UPDATE card SET room_id=$1 WHERE room_id=$2", room_id, alias)
    await db.execute("UPDATE card_edit SET room_id=$1 WHERE room_id=$2", room_id, alias)


async def card_stats(db: Any, slug: str) -> dict[str, int]:
    shared = await db.fetchval("SELECT COUNT(*) FROM card WHERE merchant_slug=$1", slug)
    edits = {r["state"]: (r["n"], r["failures"]) for r in await db.fetch(
        "SELECT state, COUNT(*) AS n, SUM(failures) AS failures FROM card_edit"
        " WHERE merchant_slug=$1 GROUP BY state", slug)}
    return {"shared": shared,
            "edits_sent": edits.get("sent", (0, 0))[0],
            "edits_waiting": edits.get("pending", (0, 0))[0],
            "edits_given_up": edits.get("failed", (0, 0))[0],
            "edit_failures": sum(int(failures or 0) for _, failures in edits.values())}


# -- card edits: the shop's record of each (the outbox sends them) --------------------

@dataclass(frozen=True)
class CardEdit:
    id: int
    txn_id: str
    card_event_id: str
    room_id: str
    merchant_slug: str
    sku: str
    state: str
    attempts: int


_EDIT_COLUMNS = "id, txn_id, card_event_id, room_id, merchant_slug, sku, state, attempts"


def _card_edit(row: Any) -> CardEdit:
    return CardEdit(**{k: row[k] for k in row.keys()})


async def record_card_edits(db: Any, cards: list[dict[str, Any]], slug: str,
                            sku: str) -> list[CardEdit]:
    """One pending edit per card; an edit of the same card still waiting is superseded."""
    edits = []
    for card in cards:
        await db.execute("UPDATE card_edit SET state='superseded' WHERE card_event_id=$1"
                         " AND state='pending'", card["event_id"])
        edit_id = await db.fetchval(
            "INSERT INTO card_edit (card_event_id, room_id, merchant_slug, sku, created_at)"
            " VALUES ($1,$2,$3,$4,$5) RETURNING id",
            card["event_id"], card["room_id"], slug, sku, now_ms())
        row = await db.fetchrow(
            f"UPDATE card_edit SET txn_id=$1 WHERE id=$2 RETURNING {_EDIT_COLUMNS}",
            f"mercato.cardedit.{edit_id}", edit_id)
        edits.append(_card_edit(row))
    return edits


async def card_edit_by_txn(db: Any, txn_id: str) -> CardEdit | None:
    row = await db.fetchrow(f"SELECT {_EDIT_COLUMNS} FROM card_edit WHERE txn_id=$1", txn_id)
    return _card_edit(row) if row else None


async def mark_edit_sent(db: Any, edit_id: int, event_id: str) -> None:
    await db.execute("UPDATE card_edit SET state='sent', event_id=$1, sent_at=$2,"
                     " last_error=NULL WHERE id=$3", event_id, now_ms(), edit_id)


async def mark_edit_failed_try(db: Any, edit_id: int, attempts: int, error: str,
                               next_attempt_at: int, give_up: bool) -> None:
    """A failed try of a waiting edit (one superseded meanwhile stays so)."""
    await db.execute("UPDATE card_edit SET attempts=$1, last_error=$2, next_attempt_at=$3,"
                     " state=CASE WHEN state='pending' THEN $4 ELSE state END,"
                     " failures=failures+1 WHERE id=$5", attempts, error[:2000],
                     next_attempt_at, "failed" if give_up else "pending", edit_id)


async def drop_card_edit(db: Any, edit_id: int, why: str) -> None:
    """An edit with nothing left to show (the product was deleted, or the card moved)."""
    await db.execute("UPDATE card_edit SET state='superseded', last_error=$1 WHERE id=$2",
                     why, edit_id)


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
