"""Who works for a shop, the keys its back-end uses, and the audit log of every change."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from appservices.commerce.db.store import _MERCHANT_COLUMNS, Merchant, hash_api_key, now_ms
from mercato.db import Database


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
