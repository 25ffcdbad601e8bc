from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Merchants, channels, followers and API keys")
async def upgrade_v1(conn: Connection) -> None:
    await conn.execute("""
        CREATE TABLE merchant (
            slug        TEXT PRIMARY KEY,
            name        TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            website     TEXT NOT NULL DEFAULT '',
            mxid        TEXT NOT NULL UNIQUE,
            owner_mxid  TEXT NOT NULL,
            status      TEXT NOT NULL,
            created_at  BIGINT NOT NULL
        )
    """)
    await conn.execute("""
        CREATE TABLE channel (
            room_id          TEXT PRIMARY KEY,
            merchant_slug    TEXT NOT NULL REFERENCES merchant (slug),
            alias            TEXT NOT NULL UNIQUE,
            name             TEXT NOT NULL,
            is_primary       BOOLEAN NOT NULL,
            welcome_event_id TEXT,
            created_at       BIGINT NOT NULL
        )
    """)
    await conn.execute("""
        CREATE TABLE follower (
            room_id     TEXT NOT NULL REFERENCES channel (room_id),
            user_id     TEXT NOT NULL,
            followed_at BIGINT NOT NULL,
            PRIMARY KEY (room_id, user_id)
        )
    """)
    await conn.execute("""
        CREATE TABLE api_key (
            key_hash      TEXT PRIMARY KEY,
            merchant_slug TEXT NOT NULL REFERENCES merchant (slug),
            label         TEXT NOT NULL,
            created_at    BIGINT NOT NULL,
            revoked_at    BIGINT
        )
    """)
