from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Users who talk to the bridge bot")
async def upgrade_v1(conn: Connection) -> None:
    # Contacts are never stored in clear: later upgrades add HMAC-only tables.
    await conn.execute("""
        CREATE TABLE bridge_user (
            user_id        TEXT PRIMARY KEY,
            dm_room_id     TEXT,
            default_region TEXT,
            greeted_at     BIGINT
        )
    """)
