"""Upgrade v14: ordering in chat — the checkout a buyer is half-way through in their DM
with a shop, the chat events that already changed a cart, and the staff thread lookup."""

from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Ordering in chat: checkout drafts and handled chat events")
async def upgrade_v14(conn: Connection) -> None:
    # One checkout in progress per DM (one buyer, one shop). Address and phone are
    # personal data: kept here only until the order is placed or the checkout dropped.
    # An empty string is an answer skipped (no phone, no coupon); NULL is not asked yet.
    # `last_event_id` is the buyer's answer applied last: a replayed event is not applied
    # twice. `placing_at` is set while `confirm` places the order.
    await conn.execute("""
        CREATE TABLE checkout_draft (
            dm_room_id      TEXT PRIMARY KEY,
            merchant_slug   TEXT NOT NULL,
            buyer_id        TEXT NOT NULL,
            delivery_kind   TEXT,
            address         TEXT,
            phone           TEXT,
            payment_method  TEXT,
            coupon_code     TEXT,
            last_event_id   TEXT,
            placing_at      BIGINT,
            created_at      BIGINT NOT NULL,
            updated_at      BIGINT NOT NULL
        )
    """)
    # A 🛒 reaction or a `buy` that changed a cart: handled once, even when replayed.
    await conn.execute("""
        CREATE TABLE order_chat_event (
            event_id    TEXT PRIMARY KEY,
            at          BIGINT NOT NULL
        )
    """)
    # Staff answer an order by replying in its thread: the thread's root finds the order.
    await conn.execute("CREATE INDEX orders_staff_event ON orders (staff_event_id)")
