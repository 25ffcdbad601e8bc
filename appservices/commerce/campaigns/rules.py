"""Campaigns, sans I/O: what a valid post is, how it renders, and quotas.

Everything a merchant typed is plain text to us: it is validated here, escaped by
the autoescaping templates and sanitised again with the spec's allowlist. Its links
follow the rules every shop text follows (links.py).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

from appservices.commerce import links
from appservices.commerce.errors import CommerceError, InvalidInput
from appservices.commerce.quotas import check_daily_quota
from mercato.matrix.html import sanitize_html
from mercato.templates import template_environment
from mercato.values import json_kind, parse_money, plain_text

TEMPLATES = template_environment(Path(__file__).parent.parent / "templates")

KINDS = ("product", "sale", "coupon", "text")
STATES = ("draft", "scheduled", "sending", "sent", "failed", "retracted", "cancelled")
CLAIM_REACTION = "🎟️"
POST_KEY = "org.mercato.post"


def claim_queue(raw: dict[str, Any]) -> str | None:
    """The inbox queue of a 🎟️ reaction: one per room and claimer ("<room> <sender>").

    In a flash sale hundreds of followers react to one coupon post at once; in the room's
    queue each claim waited for all the claims before it. A claim depends only on the post
    (the shop's own, recorded when it was sent) and the claimer, so claimers' reactions
    are handled side by side and one claimer's in order; the coupon's stock is counted
    under a lock (campaigns.storage.hold_coupon). Anything else: None (the room's queue).
    """
    content = raw.get("content")
    relation = content.get("m.relates_to") if isinstance(content, dict) else None
    room_id, sender = raw.get("room_id"), raw.get("sender")
    if raw.get("type") != "m.reaction" or not isinstance(relation, dict) \
            or relation.get("rel_type") != "m.annotation" \
            or not isinstance(relation.get("key"), str) \
            or relation["key"].replace("\ufe0f", "") != CLAIM_REACTION.replace("\ufe0f", "") \
            or not isinstance(room_id, str) or not isinstance(sender, str):
        return None
    return f"{room_id} {sender}"


class PostRefused(CommerceError):
    status = 422
    errcode = "MERCATO_POST_REFUSED"


def parse_currency(value: Any) -> str:
    if value is not None and not isinstance(value, str):
        raise InvalidInput("currency", f"must be text such as \"EUR\", not {json_kind(value)}")
    text = (value or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise InvalidInput("currency", "must be an ISO 4217 code such as EUR or USD")
    return text


def validate_fields(kind: str, fields: Any) -> dict[str, str]:
    """Check a campaign's fields for its kind; returns the cleaned fields."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidInput("kind", f"use one of: {', '.join(KINDS)}")
    if not isinstance(fields, dict):
        raise InvalidInput("fields", "must be an object")
    text = lambda name, limit=500, required=False: plain_text(  # noqa: E731
        name, fields.get(name), limit, required=required)
    cleaned: dict[str, str] = {"title": text("title", 120, required=True),
                               "text": text("text", 2000), "link": text("link", 300)}
    if kind == "product":
        cleaned["price"] = parse_money("price", fields.get("price"))
        cleaned["currency"] = parse_currency(fields.get("currency"))
    elif kind == "sale":
        cleaned["discount"] = text("discount", 60, required=True)
        cleaned["ends"] = text("ends", 60)
    elif kind == "text" and not cleaned["text"]:
        raise InvalidInput("text", "is required for a free-text post")
    cleaned["link"] = links.clean_https_url("link", cleaned["link"], 300)
    return cleaned


def render_post(kind: str, fields: dict[str, str], *, shop_name: str, shop_mxid: str,
                verified: bool, campaign_id: int, image_mxc: str = "",
                image_info: dict[str, Any] | None = None, silent: bool = False,
                coupon: dict[str, Any] | None = None) -> dict[str, Any]:
    """The m.room.message content followers receive."""
    values = {"kind": kind, "f": fields, "shop_name": shop_name, "shop_mxid": shop_mxid,
              "verified": verified, "coupon": coupon, "claim_reaction": CLAIM_REACTION}
    body = TEMPLATES.get_template("post.txt.j2").render(values).strip()
    html = sanitize_html(TEMPLATES.get_template("post.html.j2").render(values).strip())
    if silent and image_mxc:
        raise InvalidInput("silent", "silent posts are text only: m.notice cannot carry an "
                                     "image")
    content: dict[str, Any] = {
        "msgtype": "m.notice" if silent else "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": html,
        POST_KEY: {"campaign": campaign_id, "kind": kind, "shop": shop_mxid,
                   **({"coupon": coupon["id"], "claim_reaction": CLAIM_REACTION}
                      if coupon else {})},
    }
    if kind == "product":
        content[POST_KEY]["price"] = {"amount": fields["price"], "currency": fields["currency"]}
    if image_mxc:
        # A captioned image (Matrix 1.10): `filename` present makes `body` the caption.
        content.update(msgtype="m.image", url=image_mxc, info=image_info or {},
                       filename=(image_info or {}).get("filename", "promo"))
    return content


def preview_content(post: dict[str, Any], campaign_id: int) -> dict[str, Any]:
    """What the staff room sees before anything goes out."""
    preview = dict(post)
    preview["body"] = f"Preview of campaign {campaign_id} (not sent yet):\n\n{post['body']}"
    preview["formatted_body"] = (f"<p><em>Preview of campaign {campaign_id} (not sent yet)"
                                 f"</em></p>{post['formatted_body']}")
    preview.pop(POST_KEY, None)
    preview["msgtype"] = "m.notice" if post["msgtype"] == "m.notice" else post["msgtype"]
    return preview


def quota_left(quota: int, sends_in_last_day: int) -> int:
    return max(0, quota - sends_in_last_day)


def check_quota(quota: int, sends_in_last_day: int, oldest_send_ms: int | None,
                now_ms: int) -> None:
    check_daily_quota(quota, sends_in_last_day, oldest_send_ms,
                      may=f"post {quota} times", next_use="post", refusal=PostRefused)


def normalise_text(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def coupon_discount(coupon: dict[str, Any]) -> tuple[int | None, str | None]:
    """What a coupon's code takes off at checkout (orders): `percent_off` (1-100) or
    `amount_off` (a price such as "5.00" in the order's currency); neither: the code is
    only shown at the till."""
    percent, amount = coupon.get("percent_off"), coupon.get("amount_off")
    if percent is not None and amount not in (None, ""):
        raise InvalidInput("coupon.percent_off", "give percent_off or amount_off, not both")
    if percent is not None and (not isinstance(percent, int) or isinstance(percent, bool)
                                or not 1 <= percent <= 100):
        raise InvalidInput("coupon.percent_off", "must be a whole number from 1 to 100")
    money = None if amount in (None, "") else parse_money("coupon.amount_off", amount)
    return percent, money


def parse_time(field: str, value: Any) -> int:
    """An ISO 8601 time with its timezone, or milliseconds since the epoch."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return int(parsed.timestamp() * 1000)
    raise InvalidInput(field, "must be a time with its timezone, such as "
                              "2026-12-01T09:00:00+01:00")
