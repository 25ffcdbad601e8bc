from mercato.db import Connection, Scheme, register_upgrade
from mercato.matrix.outbox import create_outbox_table

from . import upgrade_table


@register_upgrade(upgrade_table, "The outbox: messages recorded before they are sent")
async def upgrade_v5(conn: Connection, scheme: Scheme) -> None:
    await create_outbox_table(conn, scheme)
