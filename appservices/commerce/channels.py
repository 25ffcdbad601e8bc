"""Channels: a shop's public broadcast rooms. Pure rules here; Matrix calls in service.py."""

from __future__ import annotations

from typing import Any

# Posting and room settings need 50 (the shop, and staff acting through Mercato);
# followers sit at 0 and may only react and take back their own reactions.
POST_LEVEL = 50


def channel_power_levels(shop: str, mercato_bot: str, *,
                         creator_in_users: bool) -> dict[str, Any]:
    """power_levels content for a channel created by `shop`.

    Rooms of version 12 give creators unlimited power and refuse them in `users`,
    older versions need them listed there.
    """
    users = {mercato_bot: 100}
    if creator_in_users:
        users[shop] = 100
    return {
        "users": users,
        "users_default": 0,
        "events_default": POST_LEVEL,
        "state_default": POST_LEVEL,
        "invite": POST_LEVEL,
        "kick": POST_LEVEL,
        "ban": POST_LEVEL,
        "redact": POST_LEVEL,
        "events": {
            "m.reaction": 0,
            "m.room.redaction": 0,
            "m.room.power_levels": 100,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
            "m.room.history_visibility": 100,
        },
        "notifications": {"room": POST_LEVEL},
    }


def room_version_has_privileged_creators(version: str) -> bool:
    """True for room versions where creators hold unlimited power (MSC4289, v12+)."""
    return version.isdigit() and int(version) >= 12


def channel_alias_localpart(user_prefix: str, slug: str) -> str:
    return f"{user_prefix}{slug}"


def channel_topic(shop_name: str, description: str) -> str:
    topic = f"Official channel of {shop_name} on Mercato."
    if description:
        topic += f" {description}"
    return topic + " Follow by joining; only the shop posts here."
