from mercato.db import Connection, Scheme, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Campaigns, the outbox, coupons, stats and reports")
async def upgrade_v3(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    await conn.execute("ALTER TABLE merchant ADD COLUMN daily_post_quota INTEGER NOT NULL "
                       "DEFAULT 3")
    await conn.execute(f"""
        CREATE TABLE campaign (
            id               {serial},
            merchant_slug    TEXT NOT NULL REFERENCES merchant (slug),
            kind             TEXT NOT NULL,
            fields           TEXT NOT NULL,
            image_mxc        TEXT NOT NULL DEFAULT '',
            image_info       TEXT NOT NULL DEFAULT '{{}}',
            silent           BOOLEAN NOT NULL DEFAULT false,
            channel_ids      TEXT NOT NULL DEFAULT '[]',
            coupon_id        BIGINT,
            state            TEXT NOT NULL,
            scheduled_at     BIGINT,
            preview_event_id TEXT,
            created_by       TEXT NOT NULL,
            created_at       BIGINT NOT NULL,
            sent_at          BIGINT,
            retracted_at     BIGINT
        )
    """)
    await conn.execute("CREATE INDEX campaign_due ON campaign (state, scheduled_at)")
    await conn.execute(f"""
        CREATE TABLE outbox (
            id              {serial},
            campaign_id     BIGINT NOT NULL REFERENCES campaign (id),
            room_id         TEXT NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending',
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL DEFAULT 0,
            last_error      TEXT,
            event_id        TEXT,
            reach           INTEGER,
            sent_at         BIGINT,
            UNIQUE (campaign_id, room_id)
        )
    """)
    await conn.execute("CREATE INDEX outbox_pending ON outbox (state, next_attempt_at)")
    await conn.execute("CREATE INDEX outbox_event ON outbox (event_id)")
    await conn.execute(f"""
        CREATE TABLE coupon (
            id             {serial},
            merchant_slug  TEXT NOT NULL REFERENCES merchant (slug),
            title          TEXT NOT NULL,
            stock          INTEGER NOT NULL,
            expires_at     BIGINT NOT NULL,
            created_by     TEXT NOT NULL,
            created_at     BIGINT NOT NULL
        )
    """)
    await conn.execute("""
        CREATE TABLE coupon_code (
            code          TEXT PRIMARY KEY,
            coupon_id     BIGINT NOT NULL REFERENCES coupon (id),
            merchant_slug TEXT NOT NULL,
            user_id       TEXT NOT NULL,
            claimed_at    BIGINT NOT NULL,
            dm_room_id    TEXT,
            dm_event_id   TEXT,
            redeemed_at   BIGINT,
            redeemed_by   TEXT,
            UNIQUE (coupon_id, user_id)
        )
    """)
    await conn.execute("""
        CREATE TABLE post_reaction (
            reaction_event_id TEXT PRIMARY KEY,
            post_event_id     TEXT NOT NULL,
            user_id           TEXT NOT NULL,
            reaction_key      TEXT NOT NULL,
            at                BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX post_reaction_post ON post_reaction (post_event_id)")
    await conn.execute("""
        CREATE TABLE post_view (
            post_event_id TEXT NOT NULL,
            user_id       TEXT NOT NULL,
            at            BIGINT NOT NULL,
            PRIMARY KEY (post_event_id, user_id)
        )
    """)
    await conn.execute(f"""
        CREATE TABLE follow_log (
            id        {serial},
            room_id   TEXT NOT NULL,
            user_id   TEXT NOT NULL,
            followed  BOOLEAN NOT NULL,
            at        BIGINT NOT NULL
        )
    """)
    await conn.execute(f"""
        CREATE TABLE report (
            id            {serial},
            merchant_slug TEXT NOT NULL,
            room_id       TEXT NOT NULL,
            event_id      TEXT NOT NULL,
            reporter      TEXT NOT NULL,
            reason        TEXT NOT NULL,
            at            BIGINT NOT NULL
        )
    """)
