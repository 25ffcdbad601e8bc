from mercato.db import Connection, Scheme, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "Webhooks: each shop's endpoint and the deliveries to it")
async def upgrade_v13(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    # A shop's endpoint: where its back-end hears of its events, and the secret that signs
    # them. `events` is a JSON list of the event types it wants, NULL for all of them.
    await conn.execute(f"""
        CREATE TABLE webhook_endpoint (
            id              {serial},
            merchant_slug   TEXT NOT NULL UNIQUE,
            url             TEXT NOT NULL,
            secret          TEXT NOT NULL,
            events          TEXT,
            created_at      BIGINT NOT NULL,
            updated_at      BIGINT NOT NULL
        )
    """)
    # One row per event and endpoint. `body` is the JSON POSTed, fixed when the event is
    # recorded so every try sends the same bytes. `subject` orders them: one subject's
    # deliveries go one after another. state: pending, delivered, failed (parked after
    # 24 hours of tries) or cancelled (the endpoint was removed). `first_try_at` starts
    # the 24 hours, so a delivery waiting behind an earlier one of its order gets its own
    # day; a resend queues it again (`queued_at`) and clears it.
    await conn.execute(f"""
        CREATE TABLE webhook_delivery (
            id              {serial},
            event_id        TEXT NOT NULL,
            endpoint_id     BIGINT NOT NULL,
            merchant_slug   TEXT NOT NULL,
            event_type      TEXT NOT NULL,
            subject         TEXT NOT NULL,
            body            TEXT NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending',
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL DEFAULT 0,
            last_status     INTEGER,
            last_error      TEXT,
            created_at      BIGINT NOT NULL,
            queued_at       BIGINT NOT NULL,
            first_try_at    BIGINT,
            delivered_at    BIGINT,
            UNIQUE (event_id, endpoint_id)
        )
    """)
    await conn.execute("CREATE INDEX webhook_delivery_queue ON webhook_delivery"
                       " (endpoint_id, subject, state, id)")
    await conn.execute("CREATE INDEX webhook_delivery_pending ON webhook_delivery (state, id)")
    await conn.execute("CREATE INDEX webhook_delivery_shop ON webhook_delivery"
                       " (merchant_slug, id)")
