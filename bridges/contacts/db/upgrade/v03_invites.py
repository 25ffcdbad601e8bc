from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Invite links; short-lived identity-service tokens")
async def upgrade_v3(conn: Connection) -> None:
    # An invite keeps who invited, where to tell them, and — if they named the person —
    # the keyed hash (HMAC, as in `findable`) of that phone number or email, never the
    # identifier itself. Counts of opened and converted invites are the operator's stats.
    await conn.execute("""
        CREATE TABLE invite (
            code           TEXT PRIMARY KEY,
            inviter        TEXT NOT NULL,
            room_id        TEXT NOT NULL,
            digest         TEXT,
            medium         TEXT,
            created_at     BIGINT NOT NULL,
            opened_at      BIGINT,
            converted_user TEXT,
            converted_at   BIGINT
        )
    """)
    await conn.execute("CREATE INDEX invite_digest ON invite (digest)")
    await conn.execute("CREATE INDEX invite_inviter ON invite (inviter)")
    # Tokens the bot hands out for the in-browser import page expire; registered ones
    # (NULL) do not.
    await conn.execute("ALTER TABLE identity_token ADD COLUMN expires_at BIGINT")
