"""The campaign composer's form, sans I/O: which kind of post a merchant picked and the
API body it makes, and times typed in the shop's own timezone (its opening hours' zone)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mercato.values import InvalidValue

# What the composer offers, and the API kind each is: an image post and a silent notice
# are text posts with a photo, or sent as m.notice (no notification, no photo).
COMPOSER_KINDS = {"product": "Product", "sale": "Sale", "coupon": "Coupon drop",
                  "text": "Text", "image": "Image", "silent": "Silent notice"}
FIELDS = ("title", "text", "link", "price", "currency", "discount", "ends")


def shop_timezone(opening_hours: str) -> ZoneInfo:
    """The zone of the shop's opening hours; UTC when it has none."""
    try:
        name = json.loads(opening_hours).get("timezone", "UTC") if opening_hours else "UTC"
        return ZoneInfo(name if isinstance(name, str) else "UTC")
    except (ValueError, AttributeError, ZoneInfoNotFoundError):
        return ZoneInfo("UTC")


def local_time(field: str, typed: str, zone: ZoneInfo) -> str:
    """A time typed in a datetime-local input (2026-12-01T09:00), in the shop's zone, as the
    API takes it (ISO 8601 with its offset); "" stays "" (now)."""
    if not typed:
        return ""
    try:
        naive = datetime.fromisoformat(typed)
    except ValueError:
        raise InvalidValue(field, "give a date and time such as 2026-12-01 09:00") from None
    return naive.replace(tzinfo=zone).isoformat()


def shown_time(ms: int | None, zone: ZoneInfo) -> str:
    """Milliseconds since the epoch as the shop reads them: 2026-12-01 09:00 (Europe/Paris)."""
    if not ms:
        return ""
    return f"{datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


def input_time(ms: int, zone: ZoneInfo) -> str:
    """The value for a datetime-local input."""
    return f"{datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone):%Y-%m-%dT%H:%M}"


def draft_body(form: Any, zone: ZoneInfo) -> dict[str, Any]:
    """The composer's form as the body of POST /shops/<slug>/campaigns (the API checks it)."""
    chosen = str(form.get("kind", "") or "")
    if chosen not in COMPOSER_KINDS:
        raise InvalidValue("kind", f"choose one of: {', '.join(COMPOSER_KINDS.values())}")
    kind = "text" if chosen in ("image", "silent") else chosen
    fields = {name: str(form.get(name, "") or "").strip() for name in FIELDS}
    wanted = {"product": ("title", "text", "link", "price", "currency"),
              "sale": ("title", "text", "link", "discount", "ends")}.get(
        kind, ("title", "text", "link"))
    body: dict[str, Any] = {"kind": kind, "silent": chosen == "silent",
                            "fields": {k: v for k, v in fields.items() if k in wanted and v}}
    if kind == "coupon":
        stock = str(form.get("stock", "") or "").strip()
        coupon: dict[str, Any] = {"stock": int(stock) if stock.isdigit() else stock,
                                  "expires_at": local_time("coupon.expires_at",
                                                           str(form.get("expires", "") or ""),
                                                           zone) or None}
        percent = str(form.get("percent_off", "") or "").strip()
        if percent:
            coupon["percent_off"] = int(percent) if percent.isdigit() else percent
        body["coupon"] = coupon
    return body
