from mercato.db import Connection, Scheme, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Card edits go through the outbox: recorded, retried, counted")
async def upgrade_v8(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    # One row per edit of a posted card; state: pending, sent, failed (parked after the
    # last try) or superseded (a newer edit of the same card shows more recent facts).
    await conn.execute(f"""
        CREATE TABLE card_edit (
            id              {serial},
            card_event_id   TEXT NOT NULL,
            room_id         TEXT NOT NULL,
            merchant_slug   TEXT NOT NULL,
            sku             TEXT NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending',
            attempts        INTEGER NOT NULL DEFAULT 0,
            failures        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL DEFAULT 0,
            last_error      TEXT,
            event_id        TEXT,
            created_at      BIGINT NOT NULL,
            sent_at         BIGINT
        )
    """)
    await conn.execute("CREATE INDEX card_edit_pending ON card_edit (state, next_attempt_at)")
    await conn.execute("CREATE INDEX card_edit_card ON card_edit (card_event_id)")
    await conn.execute("CREATE INDEX card_edit_shop ON card_edit (merchant_slug)")
