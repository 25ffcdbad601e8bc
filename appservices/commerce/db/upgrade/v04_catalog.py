from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Product catalog, posted cards and price-drop alerts")
async def upgrade_v4(conn: Connection) -> None:
    await conn.execute("""
        CREATE TABLE product (
            merchant_slug  TEXT NOT NULL REFERENCES merchant (slug),
            sku            TEXT NOT NULL,
            title          TEXT NOT NULL,
            description    TEXT NOT NULL DEFAULT '',
            price          TEXT NOT NULL,
            currency       TEXT NOT NULL,
            original_price TEXT,
            image_mxc      TEXT NOT NULL DEFAULT '',
            image_info     TEXT NOT NULL DEFAULT '{}',
            url            TEXT NOT NULL DEFAULT '',
            stock          TEXT NOT NULL DEFAULT 'in_stock',
            tags           TEXT NOT NULL DEFAULT '[]',
            created_at     BIGINT NOT NULL,
            updated_at     BIGINT NOT NULL,
            PRIMARY KEY (merchant_slug, sku)
        )
    """)
    await conn.execute("""
        CREATE TABLE card (
            event_id      TEXT PRIMARY KEY,
            room_id       TEXT NOT NULL,
            merchant_slug TEXT NOT NULL,
            sku           TEXT NOT NULL,
            price         TEXT NOT NULL,
            stock         TEXT NOT NULL,
            sent_at       BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX card_product ON card (merchant_slug, sku)")
    await conn.execute("""
        CREATE TABLE price_alert (
            merchant_slug TEXT NOT NULL,
            sku           TEXT NOT NULL,
            user_id       TEXT NOT NULL,
            price         TEXT NOT NULL,
            created_at    BIGINT NOT NULL,
            notified_at   BIGINT,
            PRIMARY KEY (merchant_slug, sku, user_id)
        )
    """)
