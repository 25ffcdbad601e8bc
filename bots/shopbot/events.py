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
