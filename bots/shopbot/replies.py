"""What the shop bot's answers look like, and the parsers of what merchants type. Pure.

Text for every client; HTML (sanitised by the bot before sending) where a table helps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mercato.commands import ArgumentError, Reply, quoted
from mercato.types import MerchantSlug

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {name: day for day in DAYS
              for name in (day, {"mon": "monday", "tue": "tuesday", "wed": "wednesday",
                                 "thu": "thursday", "fri": "friday", "sat": "saturday",
                                 "sun": "sunday"}[day])}
CLEAR_WORDS = frozenset({"off", "none", "clear"})
MAX_LISTED_SHOPS = 20

STATUS_TEXT = {
    "pending": "awaits the operator's approval",
    "approved": "approved",
    "rejected": "rejected",
    "suspended": "suspended: it can post nothing until the operator reinstates it",
}


# -- parsers ----------------------------------------------------------------------------

_SLUG_SHAPE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
MAX_SLUG = 32


def parse_slug(value: str) -> MerchantSlug:
    """A shop's short name as typed; the API applies the full rules."""
    if not _SLUG_SHAPE.match(value) or len(value) > MAX_SLUG:
        raise ArgumentError(f"{quoted(value)} is not a shop's short name: use up to "
                            f"{MAX_SLUG} lowercase letters, digits and '-', for example "
                            "green-grocer")
    return MerchantSlug(value)


def parse_clearable(value: str) -> str:
    """Free text, where `off` means 'remove it'."""
    return "" if value.strip().lower() in CLEAR_WORDS else value.strip()


def _days(word: str) -> list[str] | None:
    if word in ("daily", "everyday"):
        return list(DAYS)
    if word == "weekdays":
        return list(DAYS[:5])
    if word == "weekend":
        return ["sat", "sun"]
    days: list[str] = []
    for part in word.split(","):
        first, _, last = part.partition("-")
        if first not in _DAY_NAMES or (last and last not in _DAY_NAMES):
            return None
        start = DAYS.index(_DAY_NAMES[first])
        end = DAYS.index(_DAY_NAMES[last]) if last else start
        span = range(start, end + 1) if end >= start else [*range(start, 7), *range(end + 1)]
        days += [DAYS[k] for k in span if DAYS[k] not in days]
    return days


_SPAN = re.compile(r"^(\d{1,2})(?::(\d{2}))?-(\d{1,2})(?::(\d{2}))?$")


def _span(word: str) -> str | None:
    match = _SPAN.match(word)
    if not match:
        return None
    start_h, start_m, end_h, end_m = match.groups()
    start = (int(start_h), int(start_m or 0))
    end = (int(end_h), int(end_m or 0))
    if start[0] > 23 or end > (24, 0) or start[1] > 59 or end[1] > 59 or end <= start:
        raise ArgumentError(f"{quoted(word)} is not a span of time in one day; write it like "
                            "09:00-18:00")
    return f"{start[0]:02d}:{start[1]:02d}-{end[0]:02d}:{end[1]:02d}"


def parse_opening_hours(value: str) -> dict[str, Any]:
    """`mon-fri 09:00-18:00 sat 10:00-14:00 Europe/Paris` → the API's opening_hours.

    `off` (always open) gives {}. Days not named are closed.
    """
    originals = [w.strip(",") for w in re.split(r"[\s;]+", value.strip()) if w.strip(",")]
    words = [w.lower() for w in originals]
    if len(words) == 1 and words[0] in CLEAR_WORDS | {"always"}:
        return {}
    hours: dict[str, Any] = {}
    timezone = "UTC"
    current: list[str] = []
    last_was_span = True
    for word, original in zip(words, originals, strict=True):
        if "/" in word or word in ("utc", "gmt"):
            original = original.upper() if "/" not in word else original
            try:
                ZoneInfo(original)
            except (ZoneInfoNotFoundError, ValueError):
                raise ArgumentError(f"unknown time zone {quoted(original)}; use a name such as "
                                    "Europe/Paris") from None
            timezone = original
            continue
        days = _days(word)
        if days is not None:
            current = days if last_was_span else current + days
            last_was_span = False
            continue
        if word == "closed":
            for day in current:
                hours.pop(day, None)
            last_was_span = True
            continue
        span = _span(word)
        if span is None:
            raise ArgumentError(f"I do not understand {quoted(original)}: write days then hours, "
                                "like mon-fri 09:00-18:00 sat 10:00-14:00 Europe/Paris")
        if not current:
            raise ArgumentError("say which days first, like mon-fri 09:00-18:00")
        for day in current:
            hours.setdefault(day, []).append(span)
        last_was_span = True
    if not hours:
        raise ArgumentError("give at least one day with hours, like mon-fri 09:00-18:00 "
                            "(or 'off' to be always open)")
    return {"timezone": timezone, **{day: hours[day] for day in DAYS if day in hours}}


def parse_keyword_replies(value: str) -> list[dict[str, str]]:
    """`delivery: We ship in 2 days; returns: 30 days` (or one per line) → keyword replies."""
    if value.strip().lower() in CLEAR_WORDS:
        return []
    entries = value.splitlines() if "\n" in value.strip() else value.split(";")
    replies = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        keyword, colon, reply = entry.partition(":")
        if not colon or not keyword.strip() or not reply.strip():
            raise ArgumentError(f"{quoted(entry)} needs a keyword and a reply: keyword: reply "
                                "(several separated by ; or new lines)")
        replies.append({"keyword": keyword.strip().lower(), "reply": reply.strip()})
    return replies


# -- formatting -------------------------------------------------------------------------

def when(ms: int | None) -> str:
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_hours(hours: dict[str, Any] | None) -> str:
    if not hours:
        return "always open"
    groups: list[tuple[list[str], list[str]]] = []
    for day in DAYS:
        spans = hours.get(day)
        if not spans:
            continue
        if groups and groups[-1][1] == spans and DAYS.index(groups[-1][0][-1]) + 1 == \
                DAYS.index(day):
            groups[-1][0].append(day)
        else:
            groups.append(([day], spans))
    parts = [(f"{days[0]}-{days[-1]}" if len(days) > 1 else days[0]) + " " + " ".join(spans)
             for days, spans in groups]
    return f"{', '.join(parts) or 'closed every day'} ({hours.get('timezone', 'UTC')})"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table (the caller sanitises); every cell is escaped here."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def status_line(shop: dict[str, Any]) -> str:
    status = str(STATUS_TEXT.get(shop.get("status", ""), shop.get("status", "unknown")))
    reason = shop.get("status_reason")
    if reason and shop.get("status") in ("rejected", "suspended"):
        status += f" (reason: {reason})"
    if shop.get("verified"):
        verification = shop.get("verification") or {}
        status += f", verified by {verification.get('verified_by') or 'the operator'}"
    return status


def shop_details(shop: dict[str, Any], role: str | None, prefix: str) -> Reply:
    """One shop: what everyone sees, and the settings when the reader is its staff."""
    slug = shop["slug"]
    lines = [f"{shop['name']} ({slug}) — {status_line(shop)}"]
    if role:
        lines.append(f"Your role: {role}")
    if shop.get("description"):
        lines.append(f"Description: {shop['description']}")
    if shop.get("website"):
        lines.append(f"Website: {shop['website']}")
    if shop.get("status") == "approved":
        lines.append(f"Shop account: {shop['user_id']}")
        for alias in shop.get("channels") or []:
            lines.append(f"Channel: {alias}")
    if role:
        if shop.get("flagged"):
            lines.append(f"Flagged for the operator: {shop['flagged']}")
        lines.append(f"Welcome message: {shop.get('welcome_message') or '(none)'}")
        lines.append(f"Away message: {shop.get('away_message') or '(none)'}")
        lines.append(f"Opening hours: {format_hours(shop.get('opening_hours'))}")
        keywords = shop.get("keyword_replies") or []
        lines.append("Keyword replies: " + ("; ".join(f"{k['keyword']}: {k['reply']}"
                                                      for k in keywords) or "(none)"))
        if shop.get("status") == "pending":
            lines.append("You will be able to use the shop once the operator approves it; "
                         f"check again with {prefix}shop status {slug}.")
    return Reply("\n".join(lines))


def shop_table(shops: Sequence[dict[str, Any]], roles: dict[str, str], prefix: str) -> Reply:
    """The shops a user works for."""
    rows = [(s["slug"], s["name"], roles.get(s["slug"], ""), status_line(s)) for s in shops]
    text = ["Your shops:"] + [f"{slug} — {name} — {role} — {status}"
                              for slug, name, role, status in rows]
    text.append(f"Details of one: {prefix}shop status <slug>")
    html = ("<p>Your shops:</p>" + table(("Shop", "Name", "Your role", "Status"), rows)
            + f"<p>Details of one: <code>{escape(prefix)}shop status &lt;slug&gt;</code></p>")
    return Reply("\n".join(text), html)


def directory(shops: Sequence[dict[str, Any]], query: str, prefix: str) -> Reply:
    """The shop directory, verified shops first (the API's order)."""
    if not shops:
        if query:
            return Reply(f"No shop matches {quoted(query)}. Try another word, or {prefix}shops "
                         "for the whole directory.")
        return Reply("There are no shops in the directory yet.")
    shown = shops[:MAX_LISTED_SHOPS]
    lines = [f"Shops matching {quoted(query)}:" if query else "Shops:"]
    rows = []
    for shop in shown:
        mark = "✓ " if shop.get("verified") else ""
        channel = (shop.get("channels") or [""])[0]
        description = shop.get("description") or ""
        if len(description) > 80:
            description = description[:79] + "…"
        lines.append(f"{mark}{shop['name']} ({shop['slug']})"
                     + (f" — {description}" if description else "")
                     + (f" — {channel}" if channel else ""))
        rows.append((f"{mark}{shop['name']}", shop["slug"], description, channel))
    more = len(shops) - len(shown)
    if more:
        lines.append(f"…and {more} more; narrow it down with {prefix}shops <word>.")
    lines.append("✓ = verified by the operator. Join a shop's channel to follow it.")
    html = table(("Shop", "Short name", "About", "Channel"), rows)
    return Reply("\n".join(lines), f"<p>{escape(lines[0])}</p>{html}<p>"
                 + "</p><p>".join(escape(line) for line in lines[len(shown) + 1:]) + "</p>")


def staff_table(slug: str, staff: Sequence[dict[str, Any]]) -> Reply:
    rows = [(m["user_id"], m["role"], m.get("added_by") or "", when(m.get("added_at")))
            for m in staff]
    text = [f"Staff of {slug}:"] + [f"{user} — {role} (added by {by}, {at})"
                                    for user, role, by, at in rows]
    return Reply("\n".join(text), f"<p>Staff of {escape(slug)}:</p>"
                 + table(("Matrix ID", "Role", "Added by", "Added"), rows))


def keys_table(slug: str, keys: Sequence[dict[str, Any]], prefix: str) -> Reply:
    if not keys:
        return Reply(f"{slug} has no API keys. Create one in a direct chat with me: "
                     f"{prefix}keys create <label…>")
    rows = [(k["key_id"], k.get("label") or "", k["role"], when(k.get("created_at")),
             f"revoked {when(k.get('revoked_at'))}" if k.get("revoked") else "active")
            for k in keys]
    text = [f"API keys of {slug} (the keys themselves are never shown again):"]
    text += [f"{key_id} — {label} — {role} — created {created} — {state}"
             for key_id, label, role, created, state in rows]
    return Reply("\n".join(text), f"<p>{escape(text[0])}</p>"
                 + table(("ID", "Label", "Role", "Created", "State"), rows))


def new_key(slug: str, created: dict[str, Any], prefix: str) -> Reply:
    key_id, key = created["key_id"], created["key"]
    lines = [
        f"New API key for {slug} — “{created.get('label', '')}”, role {created['role']}, "
        f"id {key_id}:",
        key,
        "This is the only time this key is shown: copy it into your shop's back-end now. "
        f"If it is lost or leaked, revoke it with {prefix}keys revoke {key_id} and create "
        "another.",
    ]
    html = (f"<p>{escape(lines[0])}</p><pre><code>{escape(key)}</code></pre>"
            f"<p><strong>{escape(lines[2])}</strong></p>")
    return Reply("\n".join(lines), html)
