from mercato.db import Connection, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "A daily quota of product cards a shop may share")
async def upgrade_v7(conn: Connection) -> None:
    # Shares count as posts do, with their own number, so the post quota has no side door.
    await conn.execute("ALTER TABLE merchant ADD COLUMN daily_share_quota INTEGER NOT NULL "
                       "DEFAULT 10")
    await conn.execute("CREATE INDEX card_shop_sent ON card (merchant_slug, sent_at)")
