"""Rules for shop applications, sans I/O: what a valid shop looks like, and look-alikes."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appservices.commerce import links  # the module: links uses name_skeleton
from appservices.commerce.errors import InvalidInput
from mercato.types import MerchantSlug
from mercato.values import json_kind, plain_text

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$")  # 2-32 characters, as the error says
# Names that would read as Mercato itself or collide with its own rooms.
RESERVED_SLUGS = frozenset({
    "admin", "administrator", "api", "bot", "directory", "help", "mercato", "moderator",
    "official", "operator", "root", "security", "staff", "support", "system", "verified",
})
MAX_NAME = 64
MAX_DESCRIPTION = 1000
MAX_WEBSITE = 200
MAX_MESSAGE = 2000
MAX_KEYWORDS = 50
STATUSES = ("pending", "approved", "rejected", "suspended")


@dataclass(frozen=True)
class ShopApplication:
    slug: MerchantSlug
    name: str
    description: str
    website: str
    avatar_url: str


# Only verification puts a check mark next to a shop's name.
CHECK_MARKS = re.compile("[\u2713\u2714\u2611\u2705\u221a\U0001f5f8\U0001f5f9\u237b]")


def validate_name(value: Any) -> str:
    name = plain_text("name", value, MAX_NAME, required=True)
    if CHECK_MARKS.search(name):
        raise InvalidInput("name", "must not contain check marks; Mercato adds ✓ to verified "
                                   "shops")
    return name


def validate_slug(value: Any) -> MerchantSlug:
    if not isinstance(value, str) or not SLUG.match(value):
        raise InvalidInput("slug", "use 2-32 lowercase letters, digits and '-', starting and "
                                   "ending with a letter or digit (for example 'green-grocer')")
    if value in RESERVED_SLUGS:
        raise InvalidInput("slug", f"'{value}' is reserved; choose another")
    return MerchantSlug(value)


def validate_website(value: Any) -> str:
    text = plain_text("website", value, MAX_WEBSITE)
    if not text:
        return ""
    text = text if "://" in text else f"https://{text}"
    if not text.lower().startswith("https://"):
        raise InvalidInput("website", "must be an https:// address such as https://shop.example")
    # The same strict parsing as every URL a shop gives; the port stays part of where the
    # shop lives (and where its domain proof is fetched).
    parts = urlsplit(links.clean_https_url("website", text, MAX_WEBSITE + len("https://")))
    if "." not in (parts.hostname or ""):
        raise InvalidInput("website", "must be an https:// address such as https://shop.example")
    return f"https://{parts.netloc}{parts.path.rstrip('/')}"


def validate_avatar(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not re.fullmatch(r"mxc://[A-Za-z0-9.:-]+/[A-Za-z0-9_-]+",
                                                      value):
        raise InvalidInput("avatar_url", "must be an mxc:// URI from the media repository")
    return value


def validate_application(body: Any) -> ShopApplication:
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    return ShopApplication(
        slug=validate_slug(body.get("slug")),
        name=validate_name(body.get("name")),
        description=plain_text("description", body.get("description"), MAX_DESCRIPTION),
        website=validate_website(body.get("website")),
        avatar_url=validate_avatar(body.get("avatar_url")),
    )


_LOOKALIKE = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t",
                            "8": "b", "9": "g", "$": "s", "@": "a", "!": "i", "|": "l"})


def name_skeleton(name: str) -> str:
    """A name reduced to what a reader sees: case, accents, digits-as-letters, spacing."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    letters = letters.translate(_LOOKALIKE).replace("rn", "m").replace("vv", "w")
    letters = re.sub(r"\b(official|shop|store|the|inc|ltd|gmbh|llc)\b", "", letters)
    return re.sub(r"[^a-z]", "", letters)


def impersonation_of(name: str,
                     verified_names: Mapping[MerchantSlug, str]) -> MerchantSlug | None:
    """The slug of a verified shop whose name this one imitates, if any."""
    skeleton = name_skeleton(name)
    if not skeleton:
        return None
    for slug, other in verified_names.items():
        if name_skeleton(other) == skeleton:
            return slug
    return None


# -- customer-service settings --------------------------------------------------------

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def validate_opening_hours(value: Any) -> str:
    """`{"timezone": "Europe/Paris", "mon": ["09:00-12:00", "14:00-18:00"], …}` or empty."""
    if value in (None, "", {}):
        return ""
    if not isinstance(value, dict):
        raise InvalidInput("opening_hours", "must be an object of days to time spans")
    timezone = value.get("timezone", "UTC")
    if not isinstance(timezone, str):
        raise InvalidInput("opening_hours", f"timezone must be text such as \"Europe/Paris\", "
                                            f"not {json_kind(timezone)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("opening_hours", f"unknown timezone '{value.get('timezone')}'; use "
                                            "a name such as Europe/Paris") from None
    for key, spans in value.items():
        if key == "timezone":
            continue
        if key not in DAYS:
            raise InvalidInput("opening_hours", f"unknown day '{key}'; use {', '.join(DAYS)}")
        if not isinstance(spans, list) or not all(
                isinstance(s, str) and _SPAN.match(s) for s in spans):
            raise InvalidInput("opening_hours", f"{key}: give spans like \"09:00-18:00\"")
    return json.dumps(value, sort_keys=True)


def is_open(opening_hours: str, at: datetime) -> bool:
    """Whether the shop is open at `at` (aware datetime). No hours set means always open."""
    if not opening_hours:
        return True
    hours = json.loads(opening_hours)
    local = at.astimezone(ZoneInfo(hours.get("timezone", "UTC")))
    now = local.time()
    for span in hours.get(DAYS[local.weekday()], []):
        start, end = span.split("-")
        begin = time.fromisoformat(start)
        finish = time(23, 59, 59, 999999) if end == "24:00" else time.fromisoformat(end)
        if begin <= now < finish:
            return True
    return False


def validate_keyword_replies(value: Any) -> str:
    """`[{"keyword": "delivery", "reply": "We ship in 2 days."}, …]`."""
    if value in (None, ""):
        return "[]"
    if not isinstance(value, list) or len(value) > MAX_KEYWORDS:
        raise InvalidInput("keyword_replies", f"must be a list of at most {MAX_KEYWORDS} "
                                              "{keyword, reply} objects")
    cleaned = []
    for item in value:
        if not isinstance(item, dict):
            raise InvalidInput("keyword_replies", "each entry needs a keyword and a reply")
        keyword = plain_text("keyword_replies.keyword", item.get("keyword"), 64,
                              required=True).casefold()
        reply = plain_text("keyword_replies.reply", item.get("reply"), MAX_MESSAGE,
                            required=True)
        cleaned.append({"keyword": keyword, "reply": reply})
    return json.dumps(cleaned)


def keyword_reply(keyword_replies: str, message: str) -> str | None:
    words = set(re.findall(r"\w+", message.casefold()))
    text = message.casefold()
    for item in json.loads(keyword_replies or "[]"):
        keyword = item["keyword"]
        if (keyword in words) if re.fullmatch(r"\w+", keyword) else (keyword in text):
            return item["reply"]
    return None


def validate_message(field: str, value: Any) -> str:
    return plain_text(field, value, MAX_MESSAGE)
