"""Customer-service conversations: one buyer DM ↔ one thread in the shop's staff room."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appservices.commerce.shops.storage import now_ms
from mercato.types import MerchantSlug


@dataclass(frozen=True)
class SupportThread:
    dm_room_id: str
    merchant_slug: MerchantSlug
    buyer_id: str
    thread_event_id: str | None
    last_away_at: int
    created_at: int


_COLUMNS = "dm_room_id, merchant_slug, buyer_id, thread_event_id, last_away_at, created_at"


async def thread_for_dm(db: Any, dm_room_id: str) -> SupportThread | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM support_thread WHERE dm_room_id=$1",
                            dm_room_id)
    return SupportThread(**row) if row else None


async def thread_for_root(db: Any, root_event_id: str) -> SupportThread | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM support_thread WHERE thread_event_id=$1",
                            root_event_id)
    return SupportThread(**row) if row else None


async def dm_room_of(db: Any, slug: str, buyer_id: str) -> str | None:
    """The shop's latest DM with this buyer, if it has one."""
    return await db.fetchval(
        "SELECT dm_room_id FROM support_thread WHERE merchant_slug=$1 AND buyer_id=$2"
        " ORDER BY created_at DESC LIMIT 1", slug, buyer_id)


async def is_conversation_room(db: Any, room_id: str) -> bool:
    """A buyer's DM or a shop's staff room: the rooms customer service listens in."""
    return bool(await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM support_thread WHERE dm_room_id=$1)"
        " OR EXISTS (SELECT 1 FROM merchant WHERE staff_room_id=$1)", room_id))


async def open_thread(db: Any, dm_room_id: str, slug: str, buyer_id: str) -> None:
    await db.execute(
        f"INSERT INTO support_thread ({_COLUMNS}) VALUES ($1, $2, $3, NULL, 0, $4)"
        " ON CONFLICT (dm_room_id) DO NOTHING", dm_room_id, slug, buyer_id, now_ms())


async def set_thread_root(db: Any, dm_room_id: str, root_event_id: str) -> None:
    await db.execute("UPDATE support_thread SET thread_event_id=$1 WHERE dm_room_id=$2",
                     root_event_id, dm_room_id)


async def set_away_sent(db: Any, dm_room_id: str) -> None:
    await db.execute("UPDATE support_thread SET last_away_at=$1 WHERE dm_room_id=$2",
                     now_ms(), dm_room_id)


async def relayed(db: Any, source_event_id: str) -> str | None:
    return await db.fetchval(
        "SELECT relayed_event_id FROM support_message WHERE source_event_id=$1", source_event_id)


async def record_relay(db: Any, source_event_id: str, relayed_event_id: str, dm_room_id: str,
                       direction: str) -> None:
    await db.execute(
        "INSERT INTO support_message (source_event_id, relayed_event_id, dm_room_id, direction,"
        " at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_event_id) DO NOTHING",
        source_event_id, relayed_event_id, dm_room_id, direction, now_ms())


async def conversations_of_shop(db: Any, slug: str, limit: int = 50) -> list[dict[str, Any]]:
    """The shop's conversations that reached its staff room, latest message first: the
    buyer, the thread's root in the staff room, and the last relayed message (when, which
    way, its event in the DM and in the staff room)."""
    rows = await db.fetch(
        "SELECT t.dm_room_id, t.buyer_id, t.thread_event_id, t.created_at,"
        " m.at AS last_at, m.direction, m.source_event_id, m.relayed_event_id"
        " FROM support_thread t LEFT JOIN support_message m ON m.dm_room_id=t.dm_room_id"
        " AND m.at=(SELECT MAX(at) FROM support_message WHERE dm_room_id=t.dm_room_id)"
        " WHERE t.merchant_slug=$1 AND t.thread_event_id IS NOT NULL"
        " ORDER BY COALESCE(m.at, t.created_at) DESC, t.dm_room_id LIMIT $2", slug, limit)
    seen: set[str] = set()
    found = []
    for row in rows:  # two messages in the same millisecond: the first is enough
        if row["dm_room_id"] not in seen:
            seen.add(row["dm_room_id"])
            found.append({k: row[k] for k in row.keys()})
    return found
