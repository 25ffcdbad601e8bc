from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Direct messages waiting for the buyer to join")
async def upgrade_v5(conn: Connection) -> None:
    # A homeserver that joins a room late does not fetch what was said before its
    # user joined, so a shop's first words in a new DM wait for the join.
    await conn.execute("""
        CREATE TABLE pending_direct (
            txn_id     TEXT PRIMARY KEY,
            room_id    TEXT NOT NULL,
            user_id    TEXT NOT NULL,
            shop_mxid  TEXT NOT NULL,
            content    TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX pending_direct_room ON pending_direct (room_id, user_id)")
