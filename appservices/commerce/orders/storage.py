"""Order rows: orders with their items and status history, carts, each shop's order
settings, stock held by orders, and coupon codes spent at checkout.

Every statement reads the same on SQLite and PostgreSQL. Functions take the database or
the connection of the caller's transaction; those that must be atomic with others
(stock, codes, the order itself) take the connection.
"""

from __future__ import annotations

import json
from typing import Any

from appservices.commerce.orders.rules import HistoryEntry, Item, Order
from mercato.db import Connection
from mercato.matrix.retrying import now_ms

_ORDER_COLUMNS = (
    "id, merchant_slug, buyer_id, status, currency, subtotal, discount, total, delivery_kind,"
    " address, phone, payment_method, payment_reference, coupon_code, paid_at, carrier,"
    " tracking, tracking_url, reason, campaign_id, dm_room_id, card_event_id, staff_event_id,"
    " forgotten_at, created_at, updated_at")
_UPDATABLE = {"status", "paid_at", "carrier", "tracking", "tracking_url", "reason",
              "card_event_id", "staff_event_id", "address", "phone", "forgotten_at",
              "updated_at"}


def _order(row: Any) -> Order:
    return Order(**{k: row[k] for k in row.keys()})


# -- settings ---------------------------------------------------------------------------

async def get_settings(db: Any, slug: str) -> dict[str, Any] | None:
    text = await db.fetchval("SELECT settings FROM order_settings WHERE merchant_slug=$1", slug)
    return json.loads(text) if text else None


async def put_settings(db: Any, slug: str, settings: dict[str, Any]) -> None:
    await db.execute(
        "INSERT INTO order_settings (merchant_slug, settings, updated_at) VALUES ($1,$2,$3)"
        " ON CONFLICT (merchant_slug) DO UPDATE SET settings=excluded.settings,"
        " updated_at=excluded.updated_at", slug, json.dumps(settings), now_ms())


# -- carts -------------------------------------------------------------------------------

async def cart_items(db: Any, buyer_id: str, slug: str) -> list[tuple[str, int]]:
    rows = await db.fetch("SELECT sku, quantity FROM cart_item WHERE buyer_id=$1"
                          " AND merchant_slug=$2 ORDER BY added_at, sku", buyer_id, slug)
    return [(r["sku"], r["quantity"]) for r in rows]


async def cart_lines(db: Any, buyer_id: str, slug: str | None) -> list[dict[str, Any]]:
    """The buyer's cart lines at one shop (or at every shop when `slug` is None) with each
    product's title, price, currency and stock; title None for a product since removed."""
    rows = await db.fetch(
        "SELECT c.merchant_slug, c.sku, c.quantity, p.title, p.price, p.currency, p.stock"
        " FROM cart_item c LEFT JOIN product p ON p.merchant_slug=c.merchant_slug"
        " AND p.sku=c.sku WHERE c.buyer_id=$1"
        " AND (CAST($2 AS TEXT) IS NULL OR c.merchant_slug=$2)"
        " ORDER BY c.merchant_slug, c.added_at, c.sku", buyer_id, slug)
    return [{k: r[k] for k in r.keys()} for r in rows]


async def cart_quantity(db: Any, buyer_id: str, slug: str, sku: str) -> int:
    return await db.fetchval("SELECT quantity FROM cart_item WHERE buyer_id=$1"
                             " AND merchant_slug=$2 AND sku=$3", buyer_id, slug, sku) or 0


async def set_cart_item(db: Any, buyer_id: str, slug: str, sku: str, quantity: int) -> None:
    await db.execute(
        "INSERT INTO cart_item (buyer_id, merchant_slug, sku, quantity, added_at)"
        " VALUES ($1,$2,$3,$4,$5) ON CONFLICT (buyer_id, merchant_slug, sku)"
        " DO UPDATE SET quantity=excluded.quantity", buyer_id, slug, sku, quantity, now_ms())


async def add_cart_item(conn: Connection, buyer_id: str, slug: str, sku: str, quantity: int,
                        most: int) -> int | None:
    """Add `quantity` to the cart line in one statement (two additions at once both
    count); the new quantity, or None (nothing changed) when the sum would pass `most`."""
    return await conn.fetchval(
        "INSERT INTO cart_item (buyer_id, merchant_slug, sku, quantity, added_at)"
        " VALUES ($1,$2,$3,$4,$5) ON CONFLICT (buyer_id, merchant_slug, sku)"
        " DO UPDATE SET quantity = cart_item.quantity + excluded.quantity"
        " WHERE cart_item.quantity + excluded.quantity <= $6 RETURNING quantity",
        buyer_id, slug, sku, quantity, now_ms(), most)


async def delete_cart_item(db: Any, buyer_id: str, slug: str, sku: str) -> bool:
    found = await db.fetchval("DELETE FROM cart_item WHERE buyer_id=$1 AND merchant_slug=$2"
                              " AND sku=$3 RETURNING sku", buyer_id, slug, sku)
    return found is not None


async def clear_cart(conn: Connection, buyer_id: str, slug: str) -> None:
    await conn.execute("DELETE FROM cart_item WHERE buyer_id=$1 AND merchant_slug=$2",
                       buyer_id, slug)


# -- stock -------------------------------------------------------------------------------

async def counted_quantity(db: Any, slug: str, sku: str) -> int | None:
    return await db.fetchval("SELECT quantity FROM product WHERE merchant_slug=$1 AND sku=$2",
                             slug, sku)


async def take_stock(conn: Connection, slug: str, sku: str, quantity: int) -> bool:
    """Take `quantity` of a counted product; False if fewer are left. One conditional
    UPDATE: of two orders for the last unit, exactly one gets it, on either engine.
    The last unit taken makes the product out of stock."""
    left = await conn.fetchval(
        "UPDATE product SET quantity = quantity - $3,"
        " stock = CASE WHEN quantity - $3 = 0 THEN 'out_of_stock' ELSE stock END,"
        " updated_at = $4 WHERE merchant_slug=$1 AND sku=$2 AND quantity IS NOT NULL"
        " AND quantity >= $3 RETURNING quantity", slug, sku, quantity, now_ms())
    return left is not None


async def return_stock(conn: Connection, slug: str, sku: str, quantity: int) -> None:
    """Give back what a cancelled order held; a sold-out product is in stock again."""
    await conn.execute(
        "UPDATE product SET quantity = quantity + $3,"
        " stock = CASE WHEN stock = 'out_of_stock' THEN 'in_stock' ELSE stock END,"
        " updated_at = $4 WHERE merchant_slug=$1 AND sku=$2 AND quantity IS NOT NULL",
        slug, sku, quantity, now_ms())


# -- coupon codes at checkout ---------------------------------------------------------------

async def code_for_checkout(db: Any, code: str) -> dict[str, Any] | None:
    row = await db.fetchrow(
        "SELECT c.code, c.coupon_id, c.merchant_slug, c.user_id, c.redeemed_at, c.order_id,"
        " k.title, k.expires_at, k.percent_off, k.amount_off FROM coupon_code c"
        " JOIN coupon k ON k.id=c.coupon_id WHERE c.code=$1", code)
    return {k: row[k] for k in row.keys()} if row else None


async def spend_code(conn: Connection, code: str, buyer_id: str, order_id: str,
                     at: int) -> bool:
    """Mark the code spent on this order; False if it was spent already (by anyone)."""
    spent = await conn.fetchval(
        "UPDATE coupon_code SET redeemed_at=$1, redeemed_by=$2, order_id=$3 WHERE code=$4"
        " AND redeemed_at IS NULL RETURNING code", at, buyer_id, order_id, code)
    return spent is not None


async def unspend_code(conn: Connection, code: str, order_id: str) -> None:
    await conn.execute("UPDATE coupon_code SET redeemed_at=NULL, redeemed_by=NULL,"
                       " order_id=NULL WHERE code=$1 AND order_id=$2", code, order_id)


# -- orders ------------------------------------------------------------------------------------

async def order_exists(conn: Connection, order_id: str) -> bool:
    return await conn.fetchval("SELECT 1 FROM orders WHERE id=$1", order_id) is not None


async def insert_order(conn: Connection, order: Order) -> None:
    values = [getattr(order, name.strip()) for name in _ORDER_COLUMNS.split(",")]
    placeholders = ", ".join(f"${i + 1}" for i in range(len(values)))
    await conn.execute(f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ({placeholders})",
                       *values)
    for line, item in enumerate(order.items, start=1):
        await conn.execute(
            "INSERT INTO order_item (order_id, line, sku, title, unit_price, quantity)"
            " VALUES ($1,$2,$3,$4,$5,$6)", order.id, line, item.sku, item.title,
            item.unit_price, item.quantity)


async def add_history(conn: Connection, order_id: str, status: str, actor: str, note: str,
                      at: int) -> None:
    await conn.execute("INSERT INTO order_history (order_id, status, actor, note, at)"
                       " VALUES ($1,$2,$3,$4,$5)", order_id, status, actor, note, at)


async def update_order(db: Any, order_id: str, **changes: Any) -> None:
    if set(changes) - _UPDATABLE:
        raise ValueError(f"not updatable: {sorted(set(changes) - _UPDATABLE)}")
    names = list(changes)
    assignments = ", ".join(f"{name}=${i + 2}" for i, name in enumerate(names))
    await db.execute(f"UPDATE orders SET {assignments} WHERE id=$1", order_id,
                     *(changes[n] for n in names))


async def move_order(conn: Connection, order_id: str, from_status: str,
                     **changes: Any) -> bool:
    """Change the order only if it is still in `from_status` (two staff members moving one
    order at once: the second is refused, not applied twice)."""
    if set(changes) - _UPDATABLE:
        raise ValueError(f"not updatable: {sorted(set(changes) - _UPDATABLE)}")
    names = list(changes)
    assignments = ", ".join(f"{name}=${i + 3}" for i, name in enumerate(names))
    moved = await conn.fetchval(
        f"UPDATE orders SET {assignments} WHERE id=$1 AND status=$2 RETURNING id",
        order_id, from_status, *(changes[n] for n in names))
    return moved is not None


async def get_order(db: Any, order_id: str) -> Order | None:
    row = await db.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id=$1", order_id)
    if row is None:
        return None
    return (await _with_lines(db, [_order(row)]))[0]


async def _with_lines(db: Any, orders: list[Order]) -> list[Order]:
    """The orders with their items and history: one query for each, however many."""
    if not orders:
        return orders
    by_id = {o.id: o for o in orders}
    marks = ", ".join(f"${i + 1}" for i in range(len(by_id)))
    for r in await db.fetch("SELECT order_id, sku, title, unit_price, quantity FROM order_item"
                            f" WHERE order_id IN ({marks}) ORDER BY order_id, line", *by_id):
        by_id[r["order_id"]].items.append(Item(r["sku"], r["title"], r["unit_price"],
                                               r["quantity"]))
    for r in await db.fetch("SELECT order_id, status, actor, note, at FROM order_history"
                            f" WHERE order_id IN ({marks}) ORDER BY order_id, id", *by_id):
        by_id[r["order_id"]].history.append(HistoryEntry(r["status"], r["actor"], r["note"],
                                                         r["at"]))
    return orders


# Newest first; an order with the same created_at as another is told apart by its ID, so a
# page that ends inside one millisecond goes on where it stopped.
_PAGE = (" AND (CAST($3 AS BIGINT) IS NULL OR created_at < $3"
         " OR (created_at = $3 AND id > $4))"
         " AND (CAST($5 AS BIGINT) IS NULL OR created_at < $5)"
         " ORDER BY created_at DESC, id LIMIT $6")


async def orders_of_shop(db: Any, slug: str, status: str | None, limit: int,
                         after: tuple[int, str] | None = None,
                         before: int | None = None) -> list[Order]:
    """Newest first, with items and history; `after` (created_at, id of the last order of
    the page before) goes on from there; `before` (a created_at) starts older than it."""
    rows = await db.fetch(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE merchant_slug=$1"
        " AND (CAST($2 AS TEXT) IS NULL OR status=$2)" + _PAGE,
        slug, status, after[0] if after else None, after[1] if after else "", before, limit)
    return await _with_lines(db, [_order(r) for r in rows])


async def orders_of_buyer(db: Any, buyer_id: str, limit: int,
                          after: tuple[int, str] | None = None,
                          before: int | None = None) -> list[Order]:
    """The buyer's orders, newest first, with items and history; paged like a shop's."""
    rows = await db.fetch(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE buyer_id=$1"
        " AND (CAST($2 AS TEXT) IS NULL OR status=$2)" + _PAGE,
        buyer_id, None, after[0] if after else None, after[1] if after else "", before, limit)
    return await _with_lines(db, [_order(r) for r in rows])


async def history_count(db: Any, order_id: str) -> int:
    return await db.fetchval("SELECT COUNT(*) FROM order_history WHERE order_id=$1", order_id)


async def event_ids(db: Any, order_id: str) -> tuple[str | None, str | None]:
    """(the order card's event ID, the staff thread's root) once each was sent."""
    row = await db.fetchrow("SELECT card_event_id, staff_event_id FROM orders WHERE id=$1",
                            order_id)
    return (row["card_event_id"], row["staff_event_id"]) if row else (None, None)


# -- stats ---------------------------------------------------------------------------------------

COUNTED = "('placed', 'confirmed', 'paid', 'shipped', 'delivered')"


async def order_stats(db: Any, slug: str) -> dict[str, Any]:
    """Orders by status, and revenue (orders not cancelled, declined or refunded) per
    currency, in cents."""
    by_status = {r["status"]: r["n"] for r in await db.fetch(
        "SELECT status, COUNT(*) AS n FROM orders WHERE merchant_slug=$1 GROUP BY status",
        slug)}
    revenue = {r["currency"]: int(r["total"]) for r in await db.fetch(
        "SELECT currency, SUM(total) AS total FROM orders WHERE merchant_slug=$1"
        f" AND status IN {COUNTED} GROUP BY currency", slug)}
    return {"by_status": by_status, "revenue": revenue}


async def orders_by_campaign(db: Any, slug: str) -> dict[int, int]:
    rows = await db.fetch("SELECT campaign_id, COUNT(*) AS n FROM orders WHERE merchant_slug=$1"
                          f" AND campaign_id IS NOT NULL AND status IN {COUNTED}"
                          " GROUP BY campaign_id", slug)
    return {int(r["campaign_id"]): r["n"] for r in rows}
