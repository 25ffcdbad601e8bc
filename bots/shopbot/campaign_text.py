"""Campaigns as merchants type them and as the bot shows them; stats at a glance. Pure.

`draft_body` turns what was typed into the API's draft, refusing early (with what
to add) a draft its kind cannot be: a product post without a price, a coupon drop
without codes or an end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from bots.shopbot.replies import table, when
from mercato.commands import ArgumentError, CommandError, Reply

KINDS = ("product", "sale", "coupon", "text")
STATE_TEXT = {
    "draft": "draft", "scheduled": "scheduled", "sending": "being sent", "sent": "sent",
    "retracted": "retracted", "cancelled": "cancelled",
}
SPARKS = "▁▂▃▄▅▆▇█"
MAX_LISTED_CAMPAIGNS = 15


# -- parsers ----------------------------------------------------------------------------

def parse_time(value: str) -> str:
    """An ISO 8601 time with its timezone (`Z`, `+01:00` or ` UTC`) → ISO 8601 text."""
    text = value.strip()
    if text.upper().endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ArgumentError(f"'{value}' is not a time with its timezone; write it like "
                            "2026-12-01T09:00+01:00 or 2026-12-01T08:00Z")
    return parsed.isoformat()


def parse_campaign_id(value: str) -> int:
    word = value.strip().lstrip("#")
    if not word.isdigit() or int(word) < 1:
        raise ArgumentError(f"'{value}' is not a campaign number; the campaign list shows "
                            "them, like 12")
    return int(word)


def parse_coupon_id(value: str) -> int:
    word = value.strip().lstrip("#")
    if not word.isdigit() or int(word) < 1:
        raise ArgumentError(f"'{value}' is not a coupon number; the shop's post says which "
                            "number to claim, like 7")
    return int(word)


@dataclass(frozen=True)
class DraftInput:
    """What a merchant typed for `campaign draft`."""

    kind: str
    title: str
    text: str | None = None
    price: str | None = None
    currency: str | None = None
    link: str | None = None
    discount: str | None = None
    ends: str | None = None
    stock_codes: int | None = None
    expires: str | None = None
    silent: bool = False


def draft_body(typed: DraftInput, prefix: str) -> dict[str, Any]:
    """The API's campaign draft; CommandError says what a kind still needs."""
    fields: dict[str, str] = {"title": typed.title.strip()}
    for name in ("text", "link"):
        value = getattr(typed, name)
        if value:
            fields[name] = value.strip()
    missing = []
    if typed.kind == "product":
        if typed.price is None:
            missing.append("--price 19.90")
        if typed.currency is None:
            missing.append("--currency EUR")
        fields.update(price=typed.price or "", currency=typed.currency or "")
    elif typed.kind == "sale":
        if not typed.discount:
            missing.append("--discount 20%")
        fields["discount"] = typed.discount or ""
        if typed.ends:
            fields["ends"] = typed.ends
    elif typed.kind == "coupon":
        if typed.stock_codes is None:
            missing.append("--stock-codes 100")
        if typed.expires is None:
            missing.append("--expires 2026-12-31T23:59Z")
    elif typed.kind == "text" and not typed.text:
        missing.append("--text what the post says")
    if missing:
        raise CommandError(f"A {typed.kind} post needs {' and '.join(missing)}. For example: "
                           f"{prefix}{EXAMPLES[typed.kind]}")
    body: dict[str, Any] = {"kind": typed.kind, "fields": fields, "silent": typed.silent}
    if typed.kind == "coupon":
        body["coupon"] = {"stock": typed.stock_codes, "expires_at": typed.expires}
    return body


EXAMPLES = {
    "product": "campaign draft product New mug --price 24.00 --currency EUR --text Stoneware, "
               "350 ml",
    "sale": "campaign draft sale Summer sale --discount 20% --ends Sunday --text On all mugs",
    "coupon": "campaign draft coupon 5 EUR off --stock-codes 100 --expires 2026-12-31T23:59Z",
    "text": "campaign draft text Open on Sunday --text We open 10:00-14:00 this Sunday.",
}


# -- answers ----------------------------------------------------------------------------

def _title(campaign: dict[str, Any]) -> str:
    return str((campaign.get("fields") or {}).get("title") or campaign.get("title") or "")


def campaign_when(campaign: dict[str, Any]) -> str:
    state = campaign.get("state", "")
    if state == "scheduled":
        return f"for {when(campaign.get('scheduled_at'))}"
    if state in ("sent", "sending") and campaign.get("sent_at"):
        return when(campaign.get("sent_at"))
    return ""


def campaign_line(campaign: dict[str, Any]) -> str:
    extra = campaign_when(campaign)
    coupon = f", coupon {campaign['coupon_id']}" if campaign.get("coupon_id") else ""
    return (f"{campaign['id']} — {campaign['kind']}{coupon} — “{_title(campaign)}” — "
            f"{STATE_TEXT.get(campaign.get('state', ''), campaign.get('state', ''))}"
            + (f" {extra}" if extra else ""))


def campaign_created(slug: str, campaign: dict[str, Any], prefix: str) -> str:
    cid = campaign["id"]
    lines = [f"Draft {campaign_line(campaign)} in {slug}."]
    if campaign.get("coupon_id"):
        lines.append(f"Followers will claim it as coupon {campaign['coupon_id']} (react 🎟️ "
                     f"or {prefix}claim {campaign['coupon_id']}).")
    lines.append(f"Next: {prefix}campaign preview {cid} (to the staff room), "
                 f"{prefix}campaign send {cid}, or {prefix}campaign schedule {cid} "
                 "<time>.")
    return "\n".join(lines)


def campaign_list(slug: str, campaigns: Sequence[dict[str, Any]], prefix: str) -> Reply:
    if not campaigns:
        return Reply(f"{slug} has no campaigns yet. Draft one with {prefix}campaign draft "
                     f"<kind> <title…> (see {prefix}help campaign draft).")
    shown = campaigns[:MAX_LISTED_CAMPAIGNS]
    head = f"Campaigns of {slug}, newest first:"
    lines = [head, *(campaign_line(c) for c in shown)]
    if len(campaigns) > len(shown):
        lines.append(f"…and {len(campaigns) - len(shown)} older ones.")
    rows = [(str(c["id"]), c["kind"], _title(c),
             STATE_TEXT.get(c.get("state", ""), c.get("state", "")), campaign_when(c))
            for c in shown]
    html = f"<p>{escape(head)}</p>" + table(("#", "Kind", "Title", "State", "When"), rows)
    return Reply("\n".join(lines), html)


def sparkline(values: Sequence[int]) -> str:
    """A one-line chart every client shows: ▁▂▃▅▇."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[0 if high == 0 else 3] * len(values)
    return "".join(SPARKS[(v - low) * (len(SPARKS) - 1) // (high - low)] for v in values)


STAT_COLUMNS = ("#", "Title", "State", "Reach", "Views", "Reactions", "Claims", "Redeemed")


def stats_reply(slug: str, stats: dict[str, Any]) -> Reply:
    """Followers now and over 30 days, and one row per campaign."""
    history = [int(d["followers"]) for d in stats.get("followers_by_day") or []]
    followers = int(stats.get("followers", 0))
    lines = [f"Stats of {slug}: {followers} followers."]
    if history:
        change = history[-1] - history[0]
        lines.append(f"Followers, last {len(history)} days: {sparkline(history)} "
                     f"({'+' if change >= 0 else ''}{change})")
    campaigns = list(stats.get("campaigns") or [])[:MAX_LISTED_CAMPAIGNS]
    rows = [(str(c["id"]), str(c.get("title") or ""),
             STATE_TEXT.get(c.get("state", ""), str(c.get("state", ""))),
             str(c.get("reach", 0)), str(c.get("views", 0)), str(c.get("reactions", 0)),
             str(c.get("claims", 0)) if c.get("kind") == "coupon" else "—",
             str(c.get("redemptions", 0)) if c.get("kind") == "coupon" else "—")
            for c in campaigns]
    if rows:
        lines.append("Campaigns: # title — state — reach / views / reactions / claims / "
                     "redeemed")
        lines += [f"{r[0]} {r[1]} — {r[2]} — {' / '.join(r[3:])}" for r in rows]
    else:
        lines.append("No campaigns yet.")
    note = stats.get("note")
    if note:
        lines.append(f"({note})")
    html = "".join(f"<p>{escape(line)}</p>" for line in lines[:2])
    if rows:
        html += table(STAT_COLUMNS, rows)
    else:
        html += "<p>No campaigns yet.</p>"
    if note:
        html += f"<p><em>{escape(str(note))}</em></p>"
    return Reply("\n".join(lines), html)


def coupon_status(slug: str, coupon_id: int, campaign: dict[str, Any],
                  stat: dict[str, Any] | None, prefix: str) -> str:
    lines = [f"Coupon {coupon_id} of {slug}: “{_title(campaign)}”, campaign "
             f"{campaign['id']} ({STATE_TEXT.get(campaign.get('state', ''), '')}"
             + (f" {campaign_when(campaign)}" if campaign_when(campaign) else "") + ")."]
    if stat is None:
        lines.append("No claims counted yet.")
    else:
        lines.append(f"{stat.get('claims', 0)} codes claimed, {stat.get('redemptions', 0)} "
                     f"redeemed; the post reached {stat.get('reach', 0)} followers.")
    if campaign.get("state") == "draft":
        lines.append(f"It is not posted yet: {prefix}campaign send {campaign['id']}.")
    return "\n".join(lines)


def scheduled_text(campaign: dict[str, Any]) -> str:
    at = campaign.get("scheduled_at")
    stamp = datetime.fromtimestamp(at / 1000, UTC) if at else None
    return f"{stamp:%Y-%m-%d %H:%M} UTC" if stamp else "now"


def coupon_list(coupons: Sequence[dict[str, Any]], prefix: str, *, show_codes: bool,
                now: int) -> Reply:
    """A buyer's claimed coupons; the codes themselves only where nobody else reads them."""
    if not coupons:
        return Reply("You have no coupons yet. When a shop posts one, claim it with "
                     f"{prefix}claim <id> (the number is in the post), or react 🎟️ to it.")

    def state(coupon: dict[str, Any]) -> str:
        if coupon.get("redeemed_at"):
            return f"used {when(coupon['redeemed_at'])}"
        expires = coupon.get("expires_at")
        if expires and expires <= now:
            return f"expired {when(expires)}"
        return f"valid until {when(expires)}" if expires else "valid"

    headers = ["shop", "coupon", *(["code"] if show_codes else []), "state"]
    rows = [[str(c["shop"]), f"{c['coupon']} “{c.get('title') or ''}”",
             *([str(c["code"])] if show_codes else []), state(c)] for c in coupons]
    lines = ["Your coupons:"]
    lines += [" — ".join(row) for row in rows]
    if not show_codes:
        lines.append("The codes are shown only in a direct chat with me (and in the shops' "
                     f"messages to you): type {prefix}coupons there.")
    return Reply("\n".join(lines), f"<p>Your coupons:</p>{table(headers, rows)}"
                 + (f"<p>{escape(lines[-1])}</p>" if not show_codes else ""))
