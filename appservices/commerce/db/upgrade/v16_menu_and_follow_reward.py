"""Upgrade v16: a menu pinned in every buyer's DM with a shop and in its channel, the
follow reward (a coupon sent once to each new follower), and where follows come from
(the poster's QR code or elsewhere)."""

from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Pinned menus, follow rewards and follows from the poster")
async def upgrade_v16(conn: Connection) -> None:
    # The links a shop adds to its menu (JSON list of {label, url}); `version` goes up each
    # time what the menu shows changes (its links, the shop's name), `digest` is of what
    # it showed last, so a change that shows nothing new edits nothing.
    await conn.execute("""
        CREATE TABLE shop_menu (
            merchant_slug TEXT PRIMARY KEY REFERENCES merchant (slug),
            links         TEXT NOT NULL DEFAULT '[]',
            version       INTEGER NOT NULL DEFAULT 1,
            digest        TEXT NOT NULL DEFAULT '',
            updated_at    BIGINT NOT NULL
        )
    """)
    # One menu message per room: a buyer's DM with the shop (kind 'dm') or the shop's
    # channel (kind 'channel'). `version` is the menu's version the message shows now;
    # `pinned` is 'yes', 'no' (not yet) or 'not_allowed' (the shop may not pin there).
    await conn.execute("""
        CREATE TABLE pinned_menu (
            room_id       TEXT PRIMARY KEY,
            merchant_slug TEXT NOT NULL,
            kind          TEXT NOT NULL,
            event_id      TEXT,
            version       INTEGER NOT NULL DEFAULT 0,
            pinned        TEXT NOT NULL DEFAULT 'no',
            created_at    BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX pinned_menu_shop ON pinned_menu (merchant_slug, kind)")
    # The shop's follow reward: a coupon (the `coupon` table, so its codes work at checkout)
    # sent to each new follower while `given` < the coupon's stock. `missed` counts the new
    # followers who came after it ran out or expired.
    await conn.execute("""
        CREATE TABLE follow_reward (
            merchant_slug TEXT PRIMARY KEY REFERENCES merchant (slug),
            coupon_id     BIGINT NOT NULL,
            given         INTEGER NOT NULL DEFAULT 0,
            missed        INTEGER NOT NULL DEFAULT 0,
            active        BOOLEAN NOT NULL DEFAULT true,
            created_by    TEXT NOT NULL,
            created_at    BIGINT NOT NULL
        )
    """)
    # Every account that ever followed a shop, once: where the first follow came from
    # ('poster' or 'elsewhere') and what it earned ('sent', 'out_of_stock', 'expired',
    # 'none'). Leaving and following again finds the row: no second reward.
    await conn.execute("""
        CREATE TABLE new_follower (
            merchant_slug TEXT NOT NULL,
            user_id       TEXT NOT NULL,
            followed_at   BIGINT NOT NULL,
            source        TEXT NOT NULL,
            reward        TEXT NOT NULL,
            code          TEXT,
            PRIMARY KEY (merchant_slug, user_id)
        )
    """)
    # Accounts that followed before this upgrade are not new followers.
    await conn.execute("""
        INSERT INTO new_follower (merchant_slug, user_id, followed_at, source, reward)
        SELECT c.merchant_slug, l.user_id, MIN(l.at), 'elsewhere', 'none'
        FROM follow_log l JOIN channel c ON c.room_id = l.room_id
        WHERE l.followed GROUP BY c.merchant_slug, l.user_id
    """)
    # Scans of the poster's QR code, counted per day (nothing about who scanned).
    await conn.execute("""
        CREATE TABLE follow_scan (
            merchant_slug TEXT NOT NULL,
            day           TEXT NOT NULL,
            source        TEXT NOT NULL,
            scans         INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (merchant_slug, day, source)
        )
    """)
    # A signed-in visitor who opened the poster's link: their follow within a week counts
    # as from the poster. Deleted once it is counted.
    await conn.execute("""
        CREATE TABLE follow_visit (
            merchant_slug TEXT NOT NULL,
            user_id       TEXT NOT NULL,
            source        TEXT NOT NULL,
            at            BIGINT NOT NULL,
            PRIMARY KEY (merchant_slug, user_id)
        )
    """)
