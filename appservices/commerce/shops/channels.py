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
    if version.isdigit():
        return int(version) >= 12
    # Synapse's experimental forerunner of v12 ("org.matrix.hydra.11") has the same rule.
    return version.startswith("org.matrix.hydra.")


def channel_alias_localpart(user_prefix: str, slug: str) -> str:
    return f"{user_prefix}{slug}"


def channel_topic(shop_name: str, description: str, *, status: str = "approved",
                  verified_by: str | None = None, verified_on: str | None = None,
                  website: str | None = None) -> str:
    """The topic every client shows under the channel name: status and verification first."""
    parts = []
    if status == "suspended":
        parts.append("⚠ Suspended: this shop cannot post on Mercato right now.")
    if verified_by:
        parts.append(f"✓ Verified shop — {website}, verified by {verified_by} on {verified_on}.")
    parts.append(f"Official channel of {shop_name} on Mercato.")
    if description:
        parts.append(description if description.endswith((".", "!", "?")) else description + ".")
    parts.append("Follow by joining; only the shop posts here.")
    return " ".join(parts)


def shop_display_name(name: str, verified: bool) -> str:
    return f"{name} ✓" if verified else name


def staff_room_topic(shop_name: str) -> str:
    return (f"Private room of {shop_name}'s staff. Each buyer's conversation arrives as a "
            "thread; reply in the thread and the buyer gets it from the shop.")


SHOP_STATE_EVENT = "org.mercato.shop"
