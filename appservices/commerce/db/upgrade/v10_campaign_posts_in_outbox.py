"""Upgrade v10: campaign posts waiting to be sent move into the one outbox."""

from mercato.db import Connection, Scheme, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Campaign posts go through the one outbox: waiting posts move in")
async def upgrade_v10(conn: Connection, scheme: Scheme) -> None:
    # Each waiting post keeps its transaction ID, its count of tries (a post tried before
    # is looked for in its room first, and adopted if it got there) and its order; it has
    # no content of its own, the outbox renders it when it is sent. The `outbox` table
    # stays: it is the campaign's record of its posts.
    await conn.execute("""
        INSERT INTO outbound_message (txn_id, room_id, sender, content, kind, subject,
                                      attempts, next_attempt_at, created_at)
        SELECT 'mercato.outbox.' || CAST(o.id AS TEXT), o.room_id, m.mxid, '{}',
               'campaign_post', CAST(o.id AS TEXT), o.attempts, o.next_attempt_at, 0
        FROM outbox o JOIN campaign c ON c.id = o.campaign_id
                      JOIN merchant m ON m.slug = c.merchant_slug
        WHERE o.state = 'pending' ORDER BY o.id
    """)
