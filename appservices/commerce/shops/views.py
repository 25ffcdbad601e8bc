"""How shops, staff, keys and audit entries look in API responses."""

from __future__ import annotations

import json
from typing import Any

from appservices.commerce.shops import storage as store


def shop_public(merchant: store.Merchant, channels: list[store.Channel]) -> dict[str, Any]:
    return {
        "slug": merchant.slug,
        "name": merchant.name,
        "description": merchant.description,
        "website": merchant.website,
        "avatar_url": merchant.avatar_url,
        "user_id": merchant.mxid,
        "status": merchant.status,
        "verified": merchant.verified,
        "verification": {
            "verified_by": merchant.verified_by,
            "verified_at": merchant.verified_at,
            "website": merchant.verified_website,
            "method": merchant.verification_method,
        } if merchant.verified else None,
        "channels": [c.alias for c in channels],
    }


def shop_private(merchant: store.Merchant, channels: list[store.Channel]) -> dict[str, Any]:
    return {
        **shop_public(merchant, channels),
        "owner": merchant.owner_mxid,
        "status_reason": merchant.status_reason,
        "flagged": merchant.flagged_reason or None,
        "staff_room_id": merchant.staff_room_id,
        "welcome_message": merchant.welcome_message,
        "away_message": merchant.away_message,
        "opening_hours": json.loads(merchant.opening_hours) if merchant.opening_hours else None,
        "keyword_replies": json.loads(merchant.keyword_replies or "[]"),
        "created_at": merchant.created_at,
        "updated_at": merchant.updated_at,
    }


def staff_member(member: store.StaffMember) -> dict[str, Any]:
    return {"user_id": member.user_id, "role": member.role, "added_by": member.added_by,
            "added_at": member.added_at}


def api_key(key: store.ApiKey) -> dict[str, Any]:
    return {"key_id": key.key_id, "label": key.label, "role": key.role,
            "created_by": key.created_by, "created_at": key.created_at,
            "revoked": key.revoked_at is not None, "revoked_at": key.revoked_at}


def audit_entry(entry: store.AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "actor": entry.actor, "action": entry.action,
            "detail": entry.detail, "at": entry.at}
