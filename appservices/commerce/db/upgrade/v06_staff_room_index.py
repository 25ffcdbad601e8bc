from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Find a shop by its staff room without reading every shop")
async def upgrade_v6(conn: Connection) -> None:
    # Every message the appservice receives is checked against the staff rooms.
    await conn.execute("CREATE INDEX merchant_staff_room ON merchant (staff_room_id)")
