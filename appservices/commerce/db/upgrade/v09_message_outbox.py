from mercato.db import Connection, Scheme, register_upgrade
from mercato.matrix.outbox import create_outbox_table

from . import upgrade_table


@register_upgrade(upgrade_table, "One outbox for every message: DMs waiting for a join move in")
async def upgrade_v9(conn: Connection, scheme: Scheme) -> None:
    await create_outbox_table(conn, scheme)
    # DMs waiting for their buyer's join keep their transaction IDs and order. What each
    # one is was written only in its txnId before; from now on it is the `kind` column
    # and, for a coupon code, the code in `subject`.
    await conn.execute("""
        INSERT INTO outbound_message (txn_id, room_id, sender, content, kind, subject,
                                      held_for, created_at)
        SELECT txn_id, room_id, shop_mxid, content,
               CASE WHEN txn_id LIKE 'mercato.coupon.refused.%' THEN 'direct'
                    WHEN txn_id LIKE 'mercato.coupon.%' THEN 'coupon_code'
                    ELSE 'direct' END,
               CASE WHEN txn_id LIKE 'mercato.coupon.refused.%' THEN NULL
                    WHEN txn_id LIKE 'mercato.coupon.%' THEN substr(txn_id, 16)
                    ELSE NULL END,
               user_id, created_at
        FROM pending_direct ORDER BY created_at, txn_id
    """)
    await conn.execute("DROP TABLE pending_direct")
