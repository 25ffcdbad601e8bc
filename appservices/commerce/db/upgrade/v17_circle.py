"""Upgrade v17: the Circle — each user's circle room and Space, who is in whose circle, the
recommendations posted there (kept up to date like cards), the Space's children and the
daily digest's state."""

from mercato.db import Connection, Scheme, register_upgrade

from . import upgrade_table


@register_upgrade(upgrade_table, "The Circle: circle rooms, friends, recommendations, Spaces")
async def upgrade_v17(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    # A user's circle: their room (made on first use), their Space (made on opt-in), whether
    # they take part (`circle on`), and their digest (`digest on`, in the shop bot's DM).
    await conn.execute("""
        CREATE TABLE circle (
            user_id         TEXT PRIMARY KEY,
            room_id         TEXT,
            space_id        TEXT,
            opted_in        BOOLEAN NOT NULL DEFAULT false,
            digest_room_id  TEXT,
            digest_last_at  BIGINT,
            created_at      BIGINT NOT NULL,
            updated_at      BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE UNIQUE INDEX circle_room ON circle (room_id)")
    # Who is in whose circle room: state is invited, joined, knocking, left, removed or
    # banned; `how` says how they came (contacts, approved, client).
    await conn.execute("""
        CREATE TABLE circle_member (
            owner_id    TEXT NOT NULL,
            user_id     TEXT NOT NULL,
            state       TEXT NOT NULL,
            how         TEXT NOT NULL,
            updated_at  BIGINT NOT NULL,
            PRIMARY KEY (owner_id, user_id)
        )
    """)
    await conn.execute("CREATE INDEX circle_member_user ON circle_member (user_id, state)")
    # A recommendation: one message in the owner's circle room, of a product (sku) or of a
    # channel post (source event); price and stock are what the message shows now.
    await conn.execute(f"""
        CREATE TABLE circle_recommendation (
            id               {serial},
            txn_id           TEXT NOT NULL UNIQUE,
            owner_id         TEXT NOT NULL,
            room_id          TEXT NOT NULL,
            event_id         TEXT,
            merchant_slug    TEXT NOT NULL,
            sku              TEXT,
            source_room_id   TEXT,
            source_event_id  TEXT,
            note             TEXT NOT NULL DEFAULT '',
            quote            TEXT NOT NULL DEFAULT '',
            recommender_name TEXT NOT NULL,
            price            TEXT,
            stock            TEXT,
            created_at       BIGINT NOT NULL
        )
    """)
    await conn.execute("CREATE INDEX circle_recommendation_owner ON circle_recommendation"
                       " (owner_id, created_at)")
    await conn.execute("CREATE INDEX circle_recommendation_product ON circle_recommendation"
                       " (merchant_slug, sku)")
    await conn.execute("CREATE INDEX circle_recommendation_room ON circle_recommendation"
                       " (room_id, created_at)")
    # The children of a user's Space as Mercato put them there: followed channels and
    # friends' circle rooms.
    await conn.execute("""
        CREATE TABLE circle_space_child (
            user_id  TEXT NOT NULL,
            room_id  TEXT NOT NULL,
            kind     TEXT NOT NULL,
            added_at BIGINT NOT NULL,
            PRIMARY KEY (user_id, room_id)
        )
    """)
