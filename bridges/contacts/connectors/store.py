"""The rows every connector shares: logins, portals and the message mapping.

Kept in the bridge's database under their own version table (`connector_version`), so
they upgrade apart from the file-import tables. Unlike file imports, a portal has to
keep its contact's address (the bridge writes to it); logins keep only ciphertext, and
a message's text is kept only until it has been delivered (then it is cleared).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from mercato.db import (
    Connection,
    Database,
    Scheme,
    UpgradeTable,
    register_upgrade,
    transaction,
)

upgrade_table = UpgradeTable(version_table_name="connector_version",
                             database_name="contacts bridge network connectors")


@register_upgrade(upgrade_table, "Network logins, portals and the message mapping")
async def _create(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL PRIMARY KEY" if scheme != Scheme.SQLITE else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    await conn.execute("""
        CREATE TABLE network_login (
            network     TEXT NOT NULL,
            user_id     TEXT NOT NULL,
            account     TEXT NOT NULL,
            credentials TEXT NOT NULL,
            room_id     TEXT NOT NULL,
            created_at  BIGINT NOT NULL,
            PRIMARY KEY (network, user_id)
        )
    """)
    await conn.execute("""
        CREATE TABLE network_portal (
            network    TEXT NOT NULL,
            user_id    TEXT NOT NULL,
            remote_id  TEXT NOT NULL,
            room_id    TEXT NOT NULL UNIQUE,
            ghost_id   TEXT NOT NULL,
            name       TEXT NOT NULL,
            digest     TEXT,
            moved_to   TEXT,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (network, user_id, remote_id)
        )
    """)
    await conn.execute("CREATE INDEX network_portal_digest ON network_portal (digest)")
    # One row per message each way; `payload` holds the text only until it is delivered.
    await conn.execute(f"""
        CREATE TABLE network_message (
            seq           {serial},
            network       TEXT NOT NULL,
            user_id       TEXT NOT NULL,
            remote_id     TEXT NOT NULL,
            direction     TEXT NOT NULL,
            remote_msg_id TEXT NOT NULL,
            event_id      TEXT UNIQUE,
            delivered     BOOLEAN NOT NULL DEFAULT false,
            payload       TEXT,
            created_at    BIGINT NOT NULL,
            UNIQUE (network, user_id, remote_id, direction, remote_msg_id)
        )
    """)
    await conn.execute("CREATE INDEX network_message_pending"
                       " ON network_message (delivered, network, user_id, seq)")


@register_upgrade(upgrade_table, "Where each login's history was read up to; portals in the"
                                 " Contacts space")
async def _positions(conn: Connection, scheme: Scheme) -> None:
    await conn.execute("ALTER TABLE network_portal ADD COLUMN in_space_at BIGINT")
    await conn.execute("""
        CREATE TABLE network_position (
            network    TEXT NOT NULL,
            user_id    TEXT NOT NULL,
            position   TEXT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (network, user_id)
        )
    """)


def now_ms() -> int:
    return int(time.time() * 1000)


# -- logins -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Login:
    network: str
    user_id: str
    account: str
    credentials: str  # ciphertext (credentials.Vault)
    room_id: str  # the user's chat with the bot, where the bridge tells them things


async def save_login(db: Database, login: Login) -> None:
    await db.execute(
        "INSERT INTO network_login (network, user_id, account, credentials, room_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (network, user_id) DO UPDATE SET"
        " account=excluded.account, credentials=excluded.credentials, room_id=excluded.room_id",
        login.network, login.user_id, login.account, login.credentials, login.room_id, now_ms())


async def login(db: Database, network: str, user_id: str) -> Login | None:
    row = await db.fetchrow("SELECT network, user_id, account, credentials, room_id"
                            " FROM network_login WHERE network=$1 AND user_id=$2",
                            network, user_id)
    return Login(*(row[k] for k in ("network", "user_id", "account", "credentials",
                                    "room_id"))) if row else None


async def logins(db: Database) -> list[Login]:
    rows = await db.fetch("SELECT network, user_id, account, credentials, room_id"
                          " FROM network_login ORDER BY created_at")
    return [Login(row["network"], row["user_id"], row["account"], row["credentials"],
                  row["room_id"]) for row in rows]


async def delete_login(db: Database, network: str, user_id: str) -> bool:
    async with transaction(db) as conn:
        found = await conn.fetchval("SELECT COUNT(*) FROM network_login"
                                    " WHERE network=$1 AND user_id=$2", network, user_id)
        await conn.execute("DELETE FROM network_login WHERE network=$1 AND user_id=$2",
                           network, user_id)
        # A later login starts from then, not from what was said meanwhile.
        await conn.execute("DELETE FROM network_position WHERE network=$1 AND user_id=$2",
                           network, user_id)
        # What was waiting to go out goes nowhere now.
        await conn.execute("UPDATE network_message SET payload=NULL, delivered=true"
                           " WHERE network=$1 AND user_id=$2 AND delivered=false",
                           network, user_id)
    return bool(found)


# -- portals ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Portal:
    network: str
    user_id: str
    remote_id: str
    room_id: str
    ghost_id: str
    name: str
    digest: str | None
    moved_to: str | None


_PORTAL = "network, user_id, remote_id, room_id, ghost_id, name, digest, moved_to"


def _portal(row: Any) -> Portal:
    return Portal(*(row[k] for k in _PORTAL.split(", ")))


async def add_portal(db: Database, portal: Portal) -> None:
    await db.execute(
        f"INSERT INTO network_portal ({_PORTAL}, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        *(getattr(portal, k) for k in _PORTAL.split(", ")), now_ms())


async def portal(db: Database, network: str, user_id: str, remote_id: str) -> Portal | None:
    row = await db.fetchrow(f"SELECT {_PORTAL} FROM network_portal WHERE network=$1"
                            " AND user_id=$2 AND remote_id=$3", network, user_id, remote_id)
    return _portal(row) if row else None


async def portal_by_room(db: Database, room_id: str) -> Portal | None:
    row = await db.fetchrow(f"SELECT {_PORTAL} FROM network_portal WHERE room_id=$1", room_id)
    return _portal(row) if row else None


async def portal_rooms(db: Database) -> set[str]:
    return {row["room_id"] for row in await db.fetch("SELECT room_id FROM network_portal")}


async def unmoved_portals(db: Database, after: str, limit: int) -> list[Portal]:
    rows = await db.fetch(f"SELECT {_PORTAL} FROM network_portal WHERE moved_to IS NULL"
                          " AND digest IS NOT NULL AND room_id > $1 ORDER BY room_id LIMIT $2",
                          after, limit)
    return [_portal(row) for row in rows]


async def unmoved_portals_of(db: Database, digest: str) -> list[Portal]:
    rows = await db.fetch(f"SELECT {_PORTAL} FROM network_portal WHERE digest=$1"
                          " AND moved_to IS NULL", digest)
    return [_portal(row) for row in rows]


async def opted_in_since(db: Database, since_ms: int) -> list[tuple[str, str]]:
    """(digest, Matrix ID) of identifiers verified and made findable since then."""
    rows = await db.fetch("SELECT digest, user_id FROM findable WHERE verified"
                          " AND created_at >= $1", since_ms)
    return [(row["digest"], row["user_id"]) for row in rows]


async def set_moved(db: Database, room_id: str, user_id: str) -> None:
    await db.execute("UPDATE network_portal SET moved_to=$1 WHERE room_id=$2", user_id, room_id)


async def portals_not_in_space(db: Database) -> list[tuple[str, str]]:
    """(user, room) of portals not yet put in their user's Contacts space."""
    rows = await db.fetch("SELECT user_id, room_id FROM network_portal WHERE in_space_at IS NULL"
                          " ORDER BY created_at")
    return [(row["user_id"], row["room_id"]) for row in rows]


async def mark_portal_in_space(db: Database, room_id: str) -> None:
    await db.execute("UPDATE network_portal SET in_space_at=$1 WHERE room_id=$2", now_ms(),
                     room_id)


async def rename_portal(db: Database, room_id: str, name: str) -> None:
    await db.execute("UPDATE network_portal SET name=$1 WHERE room_id=$2", name, room_id)


# -- messages -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    seq: int
    network: str
    user_id: str
    remote_id: str
    direction: str
    remote_msg_id: str
    event_id: str | None
    delivered: bool
    payload: dict[str, Any]


_MESSAGE = ("seq, network, user_id, remote_id, direction, remote_msg_id, event_id, delivered,"
            " payload")


def _message(row: Any) -> Message:
    return Message(row["seq"], row["network"], row["user_id"], row["remote_id"],
                   row["direction"], row["remote_msg_id"], row["event_id"],
                   bool(row["delivered"]), json.loads(row["payload"] or "{}"))


async def record(db: Database, network: str, user_id: str, remote_id: str, direction: str,
                 remote_msg_id: str, payload: dict[str, Any],
                 event_id: str | None = None) -> int | None:
    """Keep a message before delivering it: its seq, or None when it was kept before."""
    seq = await db.fetchval(
        "INSERT INTO network_message (network, user_id, remote_id, direction, remote_msg_id,"
        " event_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT DO NOTHING RETURNING seq",
        network, user_id, remote_id, direction, remote_msg_id, event_id, json.dumps(payload),
        now_ms())
    return int(seq) if seq is not None else None


async def pending(db: Database, network: str, user_id: str, direction: str,
                  limit: int = 100) -> list[Message]:
    rows = await db.fetch(f"SELECT {_MESSAGE} FROM network_message WHERE delivered=false"
                          " AND network=$1 AND user_id=$2 AND direction=$3 ORDER BY seq LIMIT $4",
                          network, user_id, direction, limit)
    return [_message(row) for row in rows]


async def waiting(db: Database) -> set[tuple[str, str]]:
    """(network, user) of every login with a message not delivered yet, either way."""
    rows = await db.fetch("SELECT DISTINCT network, user_id FROM network_message"
                          " WHERE delivered=false")
    return {(row["network"], row["user_id"]) for row in rows}


async def delivered(db: Database, seq: int, event_id: str | None = None) -> None:
    """Mark a message delivered and forget its text; inbound ones learn their event ID."""
    if event_id is None:
        await db.execute("UPDATE network_message SET delivered=true, payload=NULL WHERE seq=$1",
                         seq)
    else:
        await db.execute("UPDATE network_message SET delivered=true, payload=NULL, event_id=$1"
                         " WHERE seq=$2", event_id, seq)


async def event_for(db: Database, network: str, user_id: str, remote_id: str,
                    remote_msg_id: str) -> str | None:
    return await db.fetchval("SELECT event_id FROM network_message WHERE network=$1"
                             " AND user_id=$2 AND remote_id=$3 AND remote_msg_id=$4"
                             " AND event_id IS NOT NULL ORDER BY seq LIMIT 1",
                             network, user_id, remote_id, remote_msg_id)


async def remote_for(db: Database, event_id: str) -> str | None:
    return await db.fetchval("SELECT remote_msg_id FROM network_message WHERE event_id=$1",
                             event_id)


async def sent_by_bridge(db: Database, network: str, user_id: str, remote_id: str,
                         remote_msg_id: str) -> bool:
    """Whether the bridge itself sent the contact this message (it came from Matrix)."""
    found = await db.fetchval("SELECT COUNT(*) FROM network_message WHERE network=$1"
                              " AND user_id=$2 AND remote_id=$3 AND direction='out'"
                              " AND remote_msg_id=$4", network, user_id, remote_id,
                              remote_msg_id)
    return bool(found)


# -- where each login's history was read up to --------------------------------------------

async def position(db: Database, network: str, user_id: str) -> str | None:
    return await db.fetchval("SELECT position FROM network_position WHERE network=$1"
                             " AND user_id=$2", network, user_id)


async def set_position(db: Database, network: str, user_id: str, position: str) -> None:
    await db.execute(
        "INSERT INTO network_position (network, user_id, position, updated_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (network, user_id) DO UPDATE SET"
        " position=excluded.position, updated_at=excluded.updated_at",
        network, user_id, position, now_ms())
