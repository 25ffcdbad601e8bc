from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Opt-ins as keyed hashes, quotas, identity-service tokens")
async def upgrade_v2(conn: Connection) -> None:
    # Only HMACs of opted-in identifiers: never a phone number, email or uploaded contact.
    await conn.execute("""
        CREATE TABLE findable (
            digest     TEXT PRIMARY KEY,
            user_id    TEXT NOT NULL,
            medium     TEXT NOT NULL,
            verified   BOOLEAN NOT NULL DEFAULT false,
            created_at BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX findable_user ON findable (user_id)")
    await conn.execute("""
        CREATE TABLE quota_use (
            subject      TEXT NOT NULL,
            window_start BIGINT NOT NULL,
            used         BIGINT NOT NULL,
            PRIMARY KEY (subject, window_start)
        )
    """)
    # Identity-service access tokens, stored as their SHA-256.
    await conn.execute("""
        CREATE TABLE identity_token (
            token_hash TEXT PRIMARY KEY,
            user_id    TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )
    """)
    # A summary's matches (Matrix IDs of opted-in users), so a reaction can act on it.
    await conn.execute("""
        CREATE TABLE import_summary (
            event_id   TEXT PRIMARY KEY,
            user_id    TEXT NOT NULL,
            room_id    TEXT NOT NULL,
            matches    TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )
    """)
    # Counts only, for the operator's stats.
    await conn.execute("""
        CREATE TABLE import_run (
            user_id     TEXT NOT NULL,
            source      TEXT NOT NULL,
            contacts    INTEGER NOT NULL,
            identifiers INTEGER NOT NULL,
            matched     INTEGER NOT NULL,
            refused     TEXT,
            created_at  BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX import_run_time ON import_run (created_at)")
