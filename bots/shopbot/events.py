"""What the shop bot reads in events and the content it sends back. Pure.

Which messages may be commands (never notices, edits or the bot's own), a file's
caption, the event a message replies to, a reaction's key, the product links a
message pastes, and the notice that answers a command.
"""

from __future__ import annotations

from typing import Any

from bots.shopbot.catalog_text import product_links
from mercato.commands import Reply, strip_reply_fallback
from mercato.matrix.html import sanitize_html
from mercato.types import MerchantSlug, Sku

# Messages that already are Mercato cards or posts carry their links: no card for a card.
MERCATO_KEYS = ("org.mercato.product", "org.mercato.post")


def reply_content(reply: Reply, event_id: str, sender: str) -> dict[str, Any]:
    """The notice answering a command: a reply to it, with sanitised HTML if any."""
    content: dict[str, Any] = {
        "msgtype": "m.notice", "body": reply.text,
        "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
        "m.mentions": {"user_ids": [sender]},
    }
    if reply.html:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = sanitize_html(reply.html)
    return content


def command_text(content: dict[str, Any]) -> str | None:
    """The text of a message that may be a command; None for edits, notices, media."""
    if content.get("msgtype") != "m.text":
        return None
    if content.get("m.relates_to", {}).get("rel_type") == "m.replace":
        return None
    body = content.get("body")
    return strip_reply_fallback(body) if isinstance(body, str) else None


def caption_of(content: dict[str, Any]) -> str | None:
    """The caption of a file or image (Matrix 1.10: a `body` that differs from `filename`)."""
    body, filename = content.get("body"), content.get("filename")
    if not isinstance(body, str) or not isinstance(filename, str) or body == filename:
        return None
    return strip_reply_fallback(body).strip() or None


def replied_to(content: dict[str, Any]) -> str | None:
    """The event a message replies to, if any."""
    relation = content.get("m.relates_to")
    if not isinstance(relation, dict):
        return None
    event_id = (relation.get("m.in_reply_to") or {}).get("event_id")
    return event_id if isinstance(event_id, str) else None


def reaction_of(content: dict[str, Any]) -> tuple[str, str] | None:
    """(event reacted to, key) of an m.reaction's content."""
    relation = content.get("m.relates_to")
    if not isinstance(relation, dict) or relation.get("rel_type") != "m.annotation":
        return None
    event_id, key = relation.get("event_id"), relation.get("key")
    if not isinstance(event_id, str) or not isinstance(key, str):
        return None
    return event_id, key


def links_to_answer(content: dict[str, Any],
                    public_url: str) -> list[tuple[MerchantSlug, Sku]]:
    """The product links a message pastes, unless it is a Mercato card or post itself."""
    if content.get("msgtype") != "m.text" or any(k in content for k in MERCATO_KEYS):
        return []
    body = content.get("body")
    return list(product_links(strip_reply_fallback(body), public_url)) \
        if isinstance(body, str) else []


def reaction_content(event_id: str, key: str) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}


# Room versions before 12 give a room's creators no power beyond the power levels.
CLASSIC_ROOM_VERSIONS = frozenset(str(v) for v in range(1, 12))
CREATOR_LEVEL = 2 ** 53 - 1  # "infinite": above any level the power levels can name


def power_levels_of(state: list[dict[str, Any]]) -> dict[str, Any]:
    """The m.room.power_levels content of a room's state, with its creators at the top
    level where the room version makes them all-powerful (12 and later: they are not
    listed in `users` then)."""
    by_type = {(e.get("type"), e.get("state_key")): e for e in state if isinstance(e, dict)}
    levels = dict((by_type.get(("m.room.power_levels", "")) or {}).get("content") or {})
    create = by_type.get(("m.room.create", "")) or {}
    content = create.get("content") or {}
    if str(content.get("room_version", "1")) in CLASSIC_ROOM_VERSIONS:
        return levels
    creators = [create.get("sender"), *(content.get("additional_creators") or [])]
    users = dict(levels.get("users") or {})
    users.update({c: CREATOR_LEVEL for c in creators if isinstance(c, str)})
    return {**levels, "users": users}
