"""Upgrade v12: orders, their items and status history, carts, each shop's order settings,
a counted stock quantity on products, and coupon codes spent on an order."""

from mercato.db import Connection, Scheme, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Orders: carts, orders, items, history, settings, stock")
async def upgrade_v12(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    # NULL: the shop does not count this product's stock (its `stock` state says all).
    await conn.execute("ALTER TABLE product ADD COLUMN quantity INTEGER")
    # The order a code was spent on (redeemed_at says when; a code redeemed at the till
    # has no order).
    await conn.execute("ALTER TABLE coupon_code ADD COLUMN order_id TEXT")
    # What a code takes off at checkout: a percentage or an amount (the coupon's currency
    # is the order's); a coupon with neither is only shown at the till.
    await conn.execute("ALTER TABLE coupon ADD COLUMN percent_off INTEGER")
    await conn.execute("ALTER TABLE coupon ADD COLUMN amount_off TEXT")
    # Money is in cents of the catalog's two-decimal prices ("24.90" is 2490).
    # Address and phone are personal data: only here, erased on the buyer's request.
    await conn.execute("""
        CREATE TABLE orders (
            id                TEXT PRIMARY KEY,
            merchant_slug     TEXT NOT NULL REFERENCES merchant (slug),
            buyer_id          TEXT NOT NULL,
            status            TEXT NOT NULL,
            currency          TEXT NOT NULL,
            subtotal          BIGINT NOT NULL,
            discount          BIGINT NOT NULL DEFAULT 0,
            total             BIGINT NOT NULL,
            delivery_kind     TEXT NOT NULL,
            address           TEXT,
            phone             TEXT,
            payment_method    TEXT NOT NULL,
            payment_reference TEXT NOT NULL DEFAULT '',
            coupon_code       TEXT,
            paid_at           BIGINT,
            carrier           TEXT,
            tracking          TEXT,
            tracking_url      TEXT,
            reason            TEXT,
            campaign_id       BIGINT,
            dm_room_id        TEXT NOT NULL,
            card_event_id     TEXT,
            staff_event_id    TEXT,
            forgotten_at      BIGINT,
            created_at        BIGINT NOT NULL,
            updated_at        BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX orders_shop ON orders (merchant_slug, status, created_at)")
    await conn.execute("CREATE INDEX orders_buyer ON orders (buyer_id, created_at)")
    await conn.execute("""
        CREATE TABLE order_item (
            order_id   TEXT NOT NULL REFERENCES orders (id),
            line       INTEGER NOT NULL,
            sku        TEXT NOT NULL,
            title      TEXT NOT NULL,
            unit_price BIGINT NOT NULL,
            quantity   INTEGER NOT NULL,
            PRIMARY KEY (order_id, line)
        )
    """)
    await conn.execute("CREATE INDEX order_item_sku ON order_item (sku)")
    await conn.execute(f"""
        CREATE TABLE order_history (
            id       {serial},
            order_id TEXT NOT NULL REFERENCES orders (id),
            status   TEXT NOT NULL,
            actor    TEXT NOT NULL,
            note     TEXT NOT NULL DEFAULT '',
            at       BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX order_history_order ON order_history (order_id, id)")
    await conn.execute("""
        CREATE TABLE cart_item (
            buyer_id      TEXT NOT NULL,
            merchant_slug TEXT NOT NULL,
            sku           TEXT NOT NULL,
            quantity      INTEGER NOT NULL,
            added_at      BIGINT NOT NULL,
            PRIMARY KEY (buyer_id, merchant_slug, sku)
        )
    """)
    # `settings`: JSON of the payment methods offered (with each one's settings) and the
    # delivery kinds; no row means the defaults (orders/rules.py).
    await conn.execute("""
        CREATE TABLE order_settings (
            merchant_slug TEXT PRIMARY KEY REFERENCES merchant (slug),
            settings      TEXT NOT NULL,
            updated_at    BIGINT NOT NULL
        )
    """)
