"""Upgrade v15: signing in to Mercato's web pages with a Matrix account — browser sessions,
one-time sign-in links, the sign-in requests counted for rate limits, and the DM in which
the commerce bot sends links."""

from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Web sign-in: sessions, one-time links, rate limits")
async def upgrade_v15(conn: Connection) -> None:
    # A signed-in browser. Only a hash of the cookie's random ID is kept: a copy of this
    # table signs nobody in. `how` is 'link' or 'openid'.
    await conn.execute("""
        CREATE TABLE web_session (
            id_hash       TEXT PRIMARY KEY,
            user_id       TEXT NOT NULL,
            how           TEXT NOT NULL,
            created_at    BIGINT NOT NULL,
            last_seen_at  BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX web_session_user ON web_session (user_id)")
    # A one-time sign-in link, by the hash of its token: used once, within its minutes.
    await conn.execute("""
        CREATE TABLE web_login_token (
            token_hash  TEXT PRIMARY KEY,
            user_id     TEXT NOT NULL,
            created_at  BIGINT NOT NULL,
            expires_at  BIGINT NOT NULL,
            used_at     BIGINT
        )
    """)
    # Sign-in requests counted per Matrix ID and per address, in fixed windows.
    await conn.execute("""
        CREATE TABLE web_rate_limit (
            bucket        TEXT NOT NULL,
            window_start  BIGINT NOT NULL,
            hits          INTEGER NOT NULL,
            PRIMARY KEY (bucket, window_start)
        )
    """)
    # The commerce bot's DM with a user, where sign-in links arrive.
    await conn.execute("""
        CREATE TABLE web_signin_dm (
            user_id  TEXT PRIMARY KEY,
            room_id  TEXT NOT NULL
        )
    """)
