from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Verification codes; the Contacts space and its chats")
async def upgrade_v4(conn: Connection) -> None:
    # From now on only verified opt-ins are findable. Rows made before (verified = false)
    # stay, unfindable, until their user verifies the identifier; another account that
    # verifies the same identifier takes it over.
    #
    # A code sent to a phone number or email that someone opts in with: the identifier
    # only as its keyed hash (as in `findable`), the code only as an HMAC.
    await conn.execute("""
        CREATE TABLE verification (
            user_id    TEXT NOT NULL,
            digest     TEXT NOT NULL,
            medium     TEXT NOT NULL,
            code_hash  TEXT NOT NULL,
            attempts   INTEGER NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            PRIMARY KEY (user_id, digest)
        )
    """)
    # The "Contacts" space the bridge keeps for a user.
    await conn.execute("""
        CREATE TABLE contacts_space (
            user_id    TEXT PRIMARY KEY,
            room_id    TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )
    """)
    # A direct chat the bridge opened for `user_id` with `other_user` (room_id is NULL
    # while it is being created); `in_space_at` once it is a child of their space.
    await conn.execute("""
        CREATE TABLE opened_chat (
            user_id     TEXT NOT NULL,
            other_user  TEXT NOT NULL,
            room_id     TEXT,
            created_at  BIGINT NOT NULL,
            in_space_at BIGINT,
            PRIMARY KEY (user_id, other_user)
        )
    """)
    await conn.execute("CREATE INDEX opened_chat_room ON opened_chat (room_id)")
