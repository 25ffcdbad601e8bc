"""What a circle room is and what a recommendation says, sans I/O.

A circle room is its owner's: the owner at 100, friends at 0, and posting needs 100, so
only the owner (and @mercato posting for them) writes there; friends may react. It is
`knock` (friends are invited; anyone else asks and the owner approves) with `shared`
history (a friend sees what was posted since they were invited, and no stranger reads
it). A recommendation is one message there: the product's card (`org.mercato.product`)
under "<name> recommends …", or a channel post quoted with a link to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from appservices.commerce.errors import CommerceError, InvalidInput
from appservices.commerce.quotas import DAY_MS
from mercato.matrix.html import sanitize_html
from mercato.values import plain_text

RECOMMEND_REACTIONS = ("⭐", "🌟")
BY_KEY = "org.mercato.recommendation.by"  # the recommender's Matrix ID
NOTE_KEY = "org.mercato.recommendation.note"  # their own line, if any
OF_KEY = "org.mercato.recommendation.of"  # what was recommended: a matrix.to link or a page
OWNER_LEVEL = 100
POST_LEVEL = 100  # only the owner and the bot post
MAX_NOTE = 280
SPACE_NAME = "Circle"
CIRCLE_ROOM_MARKER = "org.mercato.circle_of"  # in the creation content: whose circle
SPACE_MARKER = "org.mercato.circle_space_of"


class RecommendationLimit(CommerceError):
    status = 429
    errcode = "MERCATO_CIRCLE_LIMIT"


def is_recommend_reaction(key: str) -> bool:
    return key.replace("\ufe0f", "") in RECOMMEND_REACTIONS


def circle_room_name(display_name: str) -> str:
    return f"{display_name}'s Circle"


def circle_topic(display_name: str) -> str:
    return (f"What {display_name} recommends, for their friends. Only {display_name} posts "
            "here; ask to join (knock) and they can let you in.")


def circle_power_levels(owner: str, bot: str, *, creator_in_users: bool) -> dict[str, Any]:
    """power_levels of a circle room created by `bot` for `owner`. In room version 12 the
    creator (the bot) has unlimited power and may not be listed in `users`."""
    users = {owner: OWNER_LEVEL}
    if creator_in_users:
        users[bot] = 100
    return {
        "users": users,
        "users_default": 0,
        "events_default": POST_LEVEL,
        "state_default": POST_LEVEL,
        "invite": OWNER_LEVEL,
        "kick": OWNER_LEVEL,
        "ban": OWNER_LEVEL,
        "redact": OWNER_LEVEL,
        "events": {"m.reaction": 0, "m.room.redaction": 0},
        "notifications": {"room": OWNER_LEVEL},
    }


def space_power_levels(owner: str, bot: str, *, creator_in_users: bool) -> dict[str, Any]:
    """The user's Space: they are its admin; the bot keeps its children up to date."""
    users = {owner: 100}
    if creator_in_users:
        users[bot] = 100
    return {"users": users, "users_default": 0, "events_default": 50, "state_default": 50,
            "invite": 100, "kick": 100, "ban": 100, "redact": 50}


def validate_note(value: Any) -> str:
    """The recommender's own line: plain text, one paragraph, at most MAX_NOTE characters."""
    if value is None or value == "":
        return ""
    note = plain_text("note", value, limit=MAX_NOTE).strip()
    if "\n" in note:
        raise InvalidInput("note", "write your line on one line")
    return note


def check_daily_limit(limit: int, used_in_last_day: int, oldest_ms: int | None) -> None:
    """A circle is not a spam channel: `limit` recommendations in any 24 hours."""
    if used_in_last_day < limit:
        return
    when = ""
    if oldest_ms:
        free_at = datetime.fromtimestamp((oldest_ms + DAY_MS) / 1000, UTC)
        when = f" You can recommend again after {free_at:%Y-%m-%d %H:%M} UTC."
    raise RecommendationLimit(
        f"You have made {limit} recommendations in the last 24 hours, the most a day.{when}")


def matrix_to(room_id: str, event_id: str) -> str:
    return f"https://matrix.to/#/{quote(room_id, safe='')}/{quote(event_id, safe='')}"


@dataclass(frozen=True)
class Recommender:
    user_id: str
    name: str


def product_recommendation(card: dict[str, Any], by: Recommender, note: str) -> dict[str, Any]:
    """The card's content (an m.image card stays one) introduced by who recommends it."""
    product = card["org.mercato.product"]
    headline = f"{by.name} recommends {product['title']} — {product['price']} " \
               f"{product['currency']}"
    body = headline + (f"\n“{note}”" if note else "") + "\n\n" + card["body"]
    html = (f"<p><strong>{escape(by.name)}</strong> recommends:</p>"
            + (f"<blockquote>{escape(note)}</blockquote>" if note else "")
            + card["formatted_body"])
    return {**card, "body": body, "formatted_body": sanitize_html(html),
            BY_KEY: by.user_id, NOTE_KEY: note, OF_KEY: product.get("page", "")}


def post_recommendation(shop_name: str, quote_text: str, link: str, by: Recommender,
                        note: str) -> dict[str, Any]:
    """A channel post, quoted, with a link to it in its channel."""
    quoted = quote_text.strip() or "(a post)"
    body = (f"{by.name} recommends a post by {shop_name}" + (f"\n“{note}”" if note else "")
            + "\n\n" + "\n".join(f"> {line}" for line in quoted.splitlines()) + f"\n{link}")
    html = (f"<p><strong>{escape(by.name)}</strong> recommends a post by "
            f"{escape(shop_name)}:</p>"
            + (f"<p>{escape(note)}</p>" if note else "")
            + "<blockquote>" + "<br>".join(escape(line) for line in quoted.splitlines())
            + f'</blockquote><p><a href="{escape(link)}">Open the post</a></p>')
    return {"msgtype": "m.text", "body": body, "format": "org.matrix.custom.html",
            "formatted_body": sanitize_html(html), BY_KEY: by.user_id, NOTE_KEY: note,
            OF_KEY: link}


def recommendation_edit(new_content: dict[str, Any], event_id: str) -> dict[str, Any]:
    """An m.replace edit carrying the recommendation of now (clients show it in place)."""
    edit = {**new_content, "body": "* " + new_content["body"],
            "formatted_body": "* " + new_content["formatted_body"]}
    edit["m.new_content"] = dict(new_content)
    edit["m.relates_to"] = {"rel_type": "m.replace", "event_id": event_id}
    return edit


# -- the feed and the digest ------------------------------------------------------------

@dataclass(frozen=True)
class FeedItem:
    """One thing in a user's Circle: a friend's recommendation or a followed channel's post."""

    kind: str  # "recommendation" or "post"
    at: int
    room_id: str
    event_id: str
    shop_slug: str
    shop_name: str
    title: str
    price: str | None = None
    currency: str | None = None
    sku: str | None = None
    recommended_by: str | None = None
    recommender_name: str | None = None
    note: str = ""
    page_url: str = ""

    @property
    def open_link(self) -> str:
        return matrix_to(self.room_id, self.event_id)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, "room_id": self.room_id,
                "event_id": self.event_id, "shop": {"slug": self.shop_slug,
                                                    "name": self.shop_name},
                "title": self.title, "price": self.price, "currency": self.currency,
                "sku": self.sku, "recommended_by": self.recommended_by,
                "recommender_name": self.recommender_name, "note": self.note,
                "links": {"open": self.open_link, "page": self.page_url}}


def merge_feed(*sources: list[FeedItem], limit: int) -> list[FeedItem]:
    """Newest first, each event once (a post recommended by a friend stays two items: the
    friend's word is news of its own)."""
    seen: set[tuple[str, str]] = set()
    merged = []
    for item in sorted((i for source in sources for i in source),
                       key=lambda i: (i.at, i.event_id), reverse=True):
        if (item.room_id, item.event_id) in seen:
            continue
        seen.add((item.room_id, item.event_id))
        merged.append(item)
    return merged[:limit]


def digest_due(last_sent_at: int | None, now_ms: int, new_items: int) -> bool:
    """At most one digest a day, and only with something new."""
    return new_items > 0 and (last_sent_at is None or now_ms - last_sent_at >= DAY_MS)


def digest_text(items: list[FeedItem], more: int) -> str:
    lines = ["New in your Circle:"]
    for item in items:
        price = f" — {item.price} {item.currency}" if item.price else ""
        who = f"{item.recommender_name} recommends " if item.kind == "recommendation" else \
            f"{item.shop_name} posted: "
        lines.append(f"• {who}{item.title}{price} {item.open_link}")
    if more:
        lines.append(f"… and {more} more.")
    lines.append("Type digest off to stop these.")
    return "\n".join(lines)
