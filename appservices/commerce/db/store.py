"""Reading and writing the commerce tables. Functions take the database they use."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from mercato.db import Connection, Database, transaction
from mercato.types import MerchantSlug, RoomID, UserID


def now_ms() -> int:
    return int(time.time() * 1000)


def hash_api_key(key: str) -> str:
    # Keys are 256-bit random strings, so a plain SHA-256 is enough to store them.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Merchant:
    slug: MerchantSlug
    name: str
    description: str
    website: str
    mxid: UserID
    owner_mxid: UserID
    status: str
    created_at: int
    avatar_url: str = ""
    status_reason: str = ""
    flagged_reason: str = ""
    verified_at: int | None = None
    verified_by: str | None = None
    verified_website: str | None = None
    verification_method: str | None = None
    domain_token: str | None = None
    staff_room_id: RoomID | None = None
    welcome_message: str = ""
    away_message: str = ""
    opening_hours: str = ""
    keyword_replies: str = "[]"
    updated_at: int = 0
    daily_post_quota: int = 3
    daily_share_quota: int = 10

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


@dataclass(frozen=True)
class Channel:
    room_id: RoomID
    merchant_slug: MerchantSlug
    alias: str
    name: str
    is_primary: bool
    welcome_event_id: str | None

    def __post_init__(self) -> None:
        # SQLite hands booleans back as 0/1.
        object.__setattr__(self, "is_primary", bool(self.is_primary))


_MERCHANT_COLUMNS = (
    "slug, name, description, website, mxid, owner_mxid, status, created_at, avatar_url, "
    "status_reason, flagged_reason, verified_at, verified_by, verified_website, "
    "verification_method, domain_token, staff_room_id, welcome_message, away_message, "
    "opening_hours, keyword_replies, updated_at, daily_post_quota, daily_share_quota"
)
# Columns a shop's own data may change through update_merchant.
UPDATABLE = frozenset({
    "name", "description", "website", "avatar_url", "status", "status_reason",
    "flagged_reason", "verified_at", "verified_by", "verified_website", "verification_method",
    "domain_token", "staff_room_id", "welcome_message", "away_message", "opening_hours",
    "keyword_replies", "daily_post_quota", "daily_share_quota",
})
_CHANNEL_COLUMNS = "room_id, merchant_slug, alias, name, is_primary, welcome_event_id"


async def get_merchant(db: Database | Connection, slug: MerchantSlug) -> Merchant | None:
    row = await db.fetchrow(f"SELECT {_MERCHANT_COLUMNS} FROM merchant WHERE slug=$1", slug)
    return Merchant(**row) if row else None


async def get_merchant_by_mxid(db: Database, mxid: str) -> Merchant | None:
    row = await db.fetchrow(f"SELECT {_MERCHANT_COLUMNS} FROM merchant WHERE mxid=$1", mxid)
    return Merchant(**row) if row else None


async def list_merchants(db: Database, status: str | None = None) -> list[Merchant]:
    if status:
        rows = await db.fetch(f"SELECT {_MERCHANT_COLUMNS} FROM merchant WHERE status=$1 "
                              "ORDER BY slug", status)
    else:
        rows = await db.fetch(f"SELECT {_MERCHANT_COLUMNS} FROM merchant ORDER BY slug")
    return [Merchant(**row) for row in rows]


async def insert_merchant(db: Any, merchant: Merchant) -> None:
    """Insert a new shop row (db may be a connection inside a transaction)."""
    await db.execute(
        "INSERT INTO merchant (slug, name, description, website, mxid, owner_mxid, status,"
        " created_at, avatar_url, flagged_reason, updated_at)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
        merchant.slug, merchant.name, merchant.description, merchant.website, merchant.mxid,
        merchant.owner_mxid, merchant.status, merchant.created_at, merchant.avatar_url,
        merchant.flagged_reason, merchant.created_at)


async def update_merchant(db: Any, slug: str, **changes: Any) -> None:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        return
    names = list(changes)
    assignments = ", ".join(f"{name}=${i + 2}" for i, name in enumerate(names))
    await db.execute(
        f"UPDATE merchant SET {assignments}, updated_at=${len(names) + 2} WHERE slug=$1",
        slug, *(changes[n] for n in names), now_ms())


async def get_channel(db: Database, room_id: str) -> Channel | None:
    row = await db.fetchrow(f"SELECT {_CHANNEL_COLUMNS} FROM channel WHERE room_id=$1", room_id)
    return Channel(**row) if row else None


async def channels_of(db: Database, slug: MerchantSlug) -> list[Channel]:
    rows = await db.fetch(f"SELECT {_CHANNEL_COLUMNS} FROM channel WHERE merchant_slug=$1 "
                          "ORDER BY is_primary DESC, created_at", slug)
    return [Channel(**row) for row in rows]


async def insert_channel(db: Database, channel: Channel) -> None:
    await db.execute(
        f"INSERT INTO channel ({_CHANNEL_COLUMNS}, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)",
        channel.room_id, channel.merchant_slug, channel.alias, channel.name,
        channel.is_primary, channel.welcome_event_id, now_ms())


async def rename_channel(db: Database, room_id: str, name: str) -> None:
    await db.execute("UPDATE channel SET name=$1 WHERE room_id=$2", name, room_id)


async def set_welcome_event(db: Database, room_id: str, event_id: str) -> None:
    await db.execute("UPDATE channel SET welcome_event_id=$1 WHERE room_id=$2",
                     event_id, room_id)


async def add_follower(db: Database, room_id: str, user_id: str, at: int | None = None) -> None:
    at = at or now_ms()
    async with transaction(db) as conn:
        existing = await conn.fetchval(
            "SELECT 1 FROM follower WHERE room_id=$1 AND user_id=$2", room_id, user_id)
        if existing:
            return
        await conn.execute("INSERT INTO follower (room_id, user_id, followed_at)"
                           " VALUES ($1, $2, $3)", room_id, user_id, at)
        await conn.execute("INSERT INTO follow_log (room_id, user_id, followed, at)"
                           " VALUES ($1, $2, true, $3)", room_id, user_id, at)


async def remove_follower(db: Database, room_id: str, user_id: str,
                          at: int | None = None) -> None:
    async with transaction(db) as conn:
        existing = await conn.fetchval(
            "SELECT 1 FROM follower WHERE room_id=$1 AND user_id=$2", room_id, user_id)
        if not existing:
            return
        await conn.execute("DELETE FROM follower WHERE room_id=$1 AND user_id=$2",
                           room_id, user_id)
        await conn.execute("INSERT INTO follow_log (room_id, user_id, followed, at)"
                           " VALUES ($1, $2, false, $3)", room_id, user_id, at or now_ms())


async def follower_count(db: Database, slug: MerchantSlug) -> int:
    return await db.fetchval(
        "SELECT COUNT(DISTINCT f.user_id) FROM follower f JOIN channel c ON c.room_id=f.room_id"
        " WHERE c.merchant_slug=$1", slug)
