"""Rows of ordering in chat: checkout drafts (the dialog in a buyer's DM with a shop),
the chat events that already changed a cart, and finding an order by its staff thread.

Every statement reads the same on SQLite and PostgreSQL. A draft holds the buyer's
address and phone only until the order is placed or the checkout dropped.
"""

from __future__ import annotations

from typing import Any

from appservices.commerce.orders.checkout_dialog import Draft
from mercato.matrix.retrying import now_ms

_DRAFT_COLUMNS = ("dm_room_id, merchant_slug, buyer_id, delivery_kind, address, phone,"
                  " payment_method, coupon_code, last_event_id, placing_at, created_at,"
                  " updated_at")


async def get_draft(db: Any, dm_room_id: str) -> Draft | None:
    row = await db.fetchrow(f"SELECT {_DRAFT_COLUMNS} FROM checkout_draft WHERE dm_room_id=$1",
                            dm_room_id)
    return Draft(**{k: row[k] for k in row.keys()}) if row else None


async def put_draft(db: Any, draft: Draft) -> None:
    """Write the draft as it is now (a new one, or the next answer applied)."""
    await db.execute(
        f"INSERT INTO checkout_draft ({_DRAFT_COLUMNS}) VALUES"
        " ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (dm_room_id) DO UPDATE SET"
        " merchant_slug=excluded.merchant_slug, buyer_id=excluded.buyer_id,"
        " delivery_kind=excluded.delivery_kind, address=excluded.address,"
        " phone=excluded.phone, payment_method=excluded.payment_method,"
        " coupon_code=excluded.coupon_code, last_event_id=excluded.last_event_id,"
        " placing_at=excluded.placing_at, created_at=excluded.created_at,"
        " updated_at=excluded.updated_at",
        draft.dm_room_id, draft.merchant_slug, draft.buyer_id, draft.delivery_kind,
        draft.address, draft.phone, draft.payment_method, draft.coupon_code,
        draft.last_event_id, draft.placing_at, draft.created_at, draft.updated_at)


async def delete_draft(db: Any, dm_room_id: str) -> None:
    await db.execute("DELETE FROM checkout_draft WHERE dm_room_id=$1", dm_room_id)


async def claim_event(conn: Any, event_id: str) -> bool:
    """True the first time a chat event is handled; False when it was already."""
    claimed = await conn.fetchval(
        "INSERT INTO order_chat_event (event_id, at) VALUES ($1, $2)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id", event_id, now_ms())
    return claimed is not None


async def order_of_staff_thread(db: Any, root_event_id: str) -> tuple[str, str] | None:
    """(order ID, shop) of the order whose staff-room thread starts at this event."""
    row = await db.fetchrow("SELECT id, merchant_slug FROM orders WHERE staff_event_id=$1",
                            root_event_id)
    return (row["id"], row["merchant_slug"]) if row else None


async def orders_placed_since(db: Any, buyer_id: str, slug: str, since: int) -> list[str]:
    """The buyer's orders at the shop placed at or after `since` (a `confirm` that placed
    its order and stopped before saying so is found here when it is handled again)."""
    rows = await db.fetch("SELECT id FROM orders WHERE buyer_id=$1 AND merchant_slug=$2"
                          " AND created_at >= $3 ORDER BY created_at", buyer_id, slug, since)
    return [r["id"] for r in rows]
