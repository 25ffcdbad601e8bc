from mercato.db import Connection, Scheme, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Merchant applications, verification, staff, audit log, "
                                  "customer-service threads")
async def upgrade_v2(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    for column in (
        "avatar_url TEXT NOT NULL DEFAULT ''",
        "status_reason TEXT NOT NULL DEFAULT ''",
        "flagged_reason TEXT NOT NULL DEFAULT ''",
        "verified_at BIGINT",
        "verified_by TEXT",
        "verified_website TEXT",
        "verification_method TEXT",
        "domain_token TEXT",
        "staff_room_id TEXT",
        "welcome_message TEXT NOT NULL DEFAULT ''",
        "away_message TEXT NOT NULL DEFAULT ''",
        "opening_hours TEXT NOT NULL DEFAULT ''",
        "keyword_replies TEXT NOT NULL DEFAULT '[]'",
        "updated_at BIGINT NOT NULL DEFAULT 0",
    ):
        await conn.execute(f"ALTER TABLE merchant ADD COLUMN {column}")
    await conn.execute("""
        CREATE TABLE staff (
            merchant_slug TEXT NOT NULL REFERENCES merchant (slug),
            user_id       TEXT NOT NULL,
            role          TEXT NOT NULL,
            added_by      TEXT NOT NULL,
            added_at      BIGINT NOT NULL,
            PRIMARY KEY (merchant_slug, user_id)
        )
    """)
    await conn.execute("CREATE INDEX staff_user ON staff (user_id)")
    # Shops made before staff existed keep their owner as the first owner.
    await conn.execute("INSERT INTO staff (merchant_slug, user_id, role, added_by, added_at)"
                       " SELECT slug, owner_mxid, 'owner', 'mercato', created_at FROM merchant")
    await conn.execute(f"""
        CREATE TABLE audit_log (
            id            {serial},
            merchant_slug TEXT NOT NULL,
            actor         TEXT NOT NULL,
            action        TEXT NOT NULL,
            detail        TEXT NOT NULL DEFAULT '{{}}',
            at            BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX audit_log_merchant ON audit_log (merchant_slug, id)")
    await conn.execute("ALTER TABLE api_key ADD COLUMN key_id TEXT")
    await conn.execute("ALTER TABLE api_key ADD COLUMN role TEXT NOT NULL DEFAULT 'editor'")
    await conn.execute("ALTER TABLE api_key ADD COLUMN created_by TEXT NOT NULL DEFAULT ''")
    await conn.execute("CREATE UNIQUE INDEX api_key_id ON api_key (key_id)")
    await conn.execute("""
        CREATE TABLE support_thread (
            dm_room_id      TEXT PRIMARY KEY,
            merchant_slug   TEXT NOT NULL REFERENCES merchant (slug),
            buyer_id        TEXT NOT NULL,
            thread_event_id TEXT,
            last_away_at    BIGINT NOT NULL DEFAULT 0,
            created_at      BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE UNIQUE INDEX support_thread_root ON support_thread "
                       "(thread_event_id)")
    await conn.execute("""
        CREATE TABLE support_message (
            source_event_id  TEXT PRIMARY KEY,
            relayed_event_id TEXT NOT NULL,
            dm_room_id       TEXT NOT NULL,
            direction        TEXT NOT NULL,
            at               BIGINT NOT NULL
        )
    """)
