"""Upgrade v11: card edits waiting to be sent move into the one outbox."""

from mercato.db import Connection, Scheme, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Card edits go through the one outbox: waiting edits move in")
async def upgrade_v11(conn: Connection, scheme: Scheme) -> None:
    # The `card_edit` row stays the shop's record of the edit (its stats read it); the
    # outbox's message names it by this transaction ID, a column of its own.
    await conn.execute("ALTER TABLE card_edit ADD COLUMN txn_id TEXT")
    await conn.execute("UPDATE card_edit SET txn_id = 'mercato.cardedit.' || CAST(id AS TEXT)")
    await conn.execute("CREATE UNIQUE INDEX card_edit_txn ON card_edit (txn_id)")
    # Each waiting edit keeps its transaction ID and count of tries (an edit tried before
    # is looked for in its room first) and its order; the outbox renders the card of the
    # moment it is sent. A card stored under an alias is moved to its room when it is sent.
    await conn.execute("""
        INSERT INTO outbound_message (txn_id, room_id, sender, content, kind, subject,
                                      attempts, next_attempt_at, created_at)
        SELECT e.txn_id, e.room_id, m.mxid, '{}', 'card_edit', e.card_event_id,
               e.attempts, e.next_attempt_at, e.created_at
        FROM card_edit e JOIN merchant m ON m.slug = e.merchant_slug
        WHERE e.state = 'pending' ORDER BY e.id
        ON CONFLICT (txn_id) DO NOTHING
    """)
