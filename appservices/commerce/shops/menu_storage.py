"""Menus in the database: the links each shop adds to its menu and the version of what the
menu shows (`shop_menu`), and the menu message of each room (`pinned_menu`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appservices.commerce.shops.storage import now_ms


@dataclass(frozen=True)
class ShopMenuRow:
    merchant_slug: str
    links: str
    version: int
    digest: str


@dataclass(frozen=True)
class PinnedMenu:
    room_id: str
    merchant_slug: str
    kind: str  # 'dm' or 'channel'
    event_id: str | None
    version: int
    pinned: str  # 'yes', 'no', 'not_allowed'


_PINNED = "room_id, merchant_slug, kind, event_id, version, pinned"


async def shop_menu(db: Any, slug: str) -> ShopMenuRow | None:
    row = await db.fetchrow("SELECT merchant_slug, links, version, digest FROM shop_menu"
                            " WHERE merchant_slug=$1", slug)
    return ShopMenuRow(**row) if row else None


async def put_shop_menu(db: Any, slug: str, links: str, version: int, digest: str) -> None:
    await db.execute(
        "INSERT INTO shop_menu (merchant_slug, links, version, digest, updated_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_slug) DO UPDATE SET"
        " links=excluded.links, version=excluded.version, digest=excluded.digest,"
        " updated_at=excluded.updated_at", slug, links, version, digest, now_ms())


async def get_pinned(db: Any, room_id: str) -> PinnedMenu | None:
    row = await db.fetchrow(f"SELECT {_PINNED} FROM pinned_menu WHERE room_id=$1", room_id)
    return PinnedMenu(**row) if row else None


async def add_pinned(db: Any, room_id: str, slug: str, kind: str) -> bool:
    """A room's menu message is to be sent: False if the room has one already."""
    added = await db.fetchval(
        "INSERT INTO pinned_menu (room_id, merchant_slug, kind, created_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (room_id) DO NOTHING RETURNING room_id",
        room_id, slug, kind, now_ms())
    return added is not None


async def set_sent(db: Any, room_id: str, event_id: str, version: int) -> None:
    await db.execute("UPDATE pinned_menu SET event_id=$1, version=$2 WHERE room_id=$3",
                     event_id, version, room_id)


async def set_version(db: Any, room_id: str, version: int) -> None:
    await db.execute("UPDATE pinned_menu SET version=$1 WHERE room_id=$2 AND version < $1",
                     version, room_id)


async def set_pinned(db: Any, room_id: str, pinned: str) -> None:
    await db.execute("UPDATE pinned_menu SET pinned=$1 WHERE room_id=$2", pinned, room_id)


async def behind(db: Any, slug: str, version: int, limit: int = 1000) -> list[PinnedMenu]:
    """The shop's sent menu messages that show an older version than `version`."""
    rows = await db.fetch(
        f"SELECT {_PINNED} FROM pinned_menu WHERE merchant_slug=$1 AND event_id IS NOT NULL"
        " AND version < $2 ORDER BY room_id LIMIT $3", slug, version, limit)
    return [PinnedMenu(**row) for row in rows]


async def counts(db: Any, slug: str) -> dict[str, int]:
    """How many DMs have the menu, and how many of them pinned it."""
    row = await db.fetchrow(
        "SELECT COUNT(*) AS dms, SUM(CASE WHEN pinned='yes' THEN 1 ELSE 0 END) AS pinned"
        " FROM pinned_menu WHERE merchant_slug=$1 AND kind='dm'", slug)
    return {"dms": int(row["dms"] or 0), "pinned": int(row["pinned"] or 0)}
