"""Shops in the database: the shop rows, their channels and followers, who works for them,
the keys their back-ends use, and the audit log of every change.

Functions take the database (or the connection of a transaction) they use.
"""

from __future__ import annotations

import hashlib
import json
import secrets
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


async def room_follower_count(db: Database, room_id: str) -> int:
    return await db.fetchval("SELECT COUNT(*) FROM follower WHERE room_id=$1", room_id)


async def merchant_of_staff_room(db: Database, room_id: str) -> Merchant | None:
    row = await db.fetchrow(f"SELECT {_MERCHANT_COLUMNS} FROM merchant WHERE staff_room_id=$1",
                            room_id)
    return Merchant(**row) if row else None


async def insert_report(db: Database, slug: str, room_id: str, event_id: str, reporter: str,
                        reason: str) -> int:
    """A follower's report of a post; returns its ID."""
    return await db.fetchval(
        "INSERT INTO report (merchant_slug, room_id, event_id, reporter, reason, at)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id", slug, room_id, event_id, reporter,
        reason, now_ms())


async def recent_reports(db: Database, limit: int = 200) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT id, merchant_slug, room_id, event_id, reporter, reason, at"
                          " FROM report ORDER BY id DESC LIMIT $1", limit)
    return [{k: r[k] for k in r.keys()} for r in rows]


async def follower_count(db: Database, slug: MerchantSlug) -> int:
    return await db.fetchval(
        "SELECT COUNT(DISTINCT f.user_id) FROM follower f JOIN channel c ON c.room_id=f.room_id"
        " WHERE c.merchant_slug=$1", slug)


@dataclass(frozen=True)
class StaffMember:
    merchant_slug: str
    user_id: str
    role: str
    added_by: str
    added_at: int


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    merchant_slug: str
    label: str
    role: str
    created_by: str
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    merchant_slug: str
    actor: str
    action: str
    detail: dict[str, Any]
    at: int


# -- staff ----------------------------------------------------------------------------

async def staff_of(db: Any, slug: str) -> list[StaffMember]:
    rows = await db.fetch("SELECT merchant_slug, user_id, role, added_by, added_at FROM staff"
                          " WHERE merchant_slug=$1 ORDER BY added_at, user_id", slug)
    return [StaffMember(**row) for row in rows]


async def staff_role(db: Any, slug: str, user_id: str) -> str | None:
    return await db.fetchval("SELECT role FROM staff WHERE merchant_slug=$1 AND user_id=$2",
                             slug, user_id)


async def shops_of_user(db: Any, user_id: str) -> list[tuple[str, str]]:
    rows = await db.fetch("SELECT merchant_slug, role FROM staff WHERE user_id=$1 "
                          "ORDER BY merchant_slug", user_id)
    return [(row["merchant_slug"], row["role"]) for row in rows]


async def put_staff(db: Any, slug: str, user_id: str, role: str, added_by: str) -> None:
    await db.execute(
        "INSERT INTO staff (merchant_slug, user_id, role, added_by, added_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_slug, user_id)"
        " DO UPDATE SET role=excluded.role", slug, user_id, role, added_by, now_ms())


async def delete_staff(db: Any, slug: str, user_id: str) -> None:
    await db.execute("DELETE FROM staff WHERE merchant_slug=$1 AND user_id=$2", slug, user_id)


async def owner_count(db: Any, slug: str) -> int:
    return await db.fetchval(
        "SELECT COUNT(*) FROM staff WHERE merchant_slug=$1 AND role='owner'", slug)


# -- API keys -------------------------------------------------------------------------

def new_api_key() -> tuple[str, str]:
    """(key_id, secret key). The id is public and names the key; the key is shown once."""
    key_id = secrets.token_hex(4)
    return key_id, f"mk_{key_id}_{secrets.token_urlsafe(32)}"


async def insert_api_key(db: Any, slug: str, key: str, *, key_id: str, label: str, role: str,
                         created_by: str) -> None:
    await db.execute(
        "INSERT INTO api_key (key_hash, merchant_slug, label, created_at, key_id, role,"
        " created_by) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (key_hash) DO NOTHING",
        hash_api_key(key), slug, label, now_ms(), key_id, role, created_by)


async def list_api_keys(db: Any, slug: str) -> list[ApiKey]:
    rows = await db.fetch(
        "SELECT key_id, merchant_slug, label, role, created_by, created_at, revoked_at"
        " FROM api_key WHERE merchant_slug=$1 ORDER BY created_at", slug)
    return [ApiKey(**row) for row in rows]


async def revoke_api_key(db: Any, slug: str, key_id: str) -> bool:
    """True if an active key of this shop was revoked."""
    active = await db.fetchval(
        "SELECT 1 FROM api_key WHERE merchant_slug=$1 AND key_id=$2 AND revoked_at IS NULL",
        slug, key_id)
    if not active:
        return False
    await db.execute("UPDATE api_key SET revoked_at=$1 WHERE merchant_slug=$2 AND key_id=$3",
                     now_ms(), slug, key_id)
    return True


async def lookup_api_key(db: Database, key: str) -> tuple[Merchant, ApiKey] | None:
    columns = ", ".join("m." + c for c in _MERCHANT_COLUMNS.split(", "))
    row = await db.fetchrow(
        f"SELECT {columns}, k.key_id AS k_key_id, k.label AS k_label, k.role AS k_role,"
        " k.created_by AS k_created_by, k.created_at AS k_created_at FROM api_key k"
        " JOIN merchant m ON m.slug=k.merchant_slug WHERE k.key_hash=$1 AND k.revoked_at IS NULL",
        hash_api_key(key))
    if not row:
        return None
    data = dict(row) if hasattr(row, "items") else {k: row[k] for k in row.keys()}
    key_fields = {k[2:]: data.pop(k) for k in list(data) if k.startswith("k_")}
    merchant = Merchant(**data)
    return merchant, ApiKey(merchant_slug=merchant.slug, revoked_at=None, **key_fields)


# -- audit log ------------------------------------------------------------------------

async def audit(db: Any, slug: str, actor: str, action: str, **detail: Any) -> None:
    await db.execute(
        "INSERT INTO audit_log (merchant_slug, actor, action, detail, at)"
        " VALUES ($1, $2, $3, $4, $5)", slug, actor, action, json.dumps(detail), now_ms())


async def audit_log(db: Any, slug: str, limit: int = 100, before: int | None = None
                    ) -> list[AuditEntry]:
    if before:
        rows = await db.fetch(
            "SELECT id, merchant_slug, actor, action, detail, at FROM audit_log"
            " WHERE merchant_slug=$1 AND id < $2 ORDER BY id DESC LIMIT $3", slug, before, limit)
    else:
        rows = await db.fetch(
            "SELECT id, merchant_slug, actor, action, detail, at FROM audit_log"
            " WHERE merchant_slug=$1 ORDER BY id DESC LIMIT $2", slug, limit)
    return [AuditEntry(id=row["id"], merchant_slug=row["merchant_slug"], actor=row["actor"],
                       action=row["action"], detail=json.loads(row["detail"]), at=row["at"])
            for row in rows]
