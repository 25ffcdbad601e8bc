"""A shop's daily allowances (campaign posts, card shares): one refusal, said the same way."""

from __future__ import annotations

from datetime import UTC, datetime

from appservices.commerce.errors import CommerceError

DAY_MS = 24 * 3600 * 1000


def check_daily_quota(quota: int, used_in_last_day: int, oldest_use_ms: int | None, *,
                      may: str, next_use: str,
                      refusal: type[CommerceError] = CommerceError) -> None:
    """Refuse (429) once `used_in_last_day` reaches `quota`, saying when the oldest use
    of the last day frees one: "Your shop may {may} a day …. The next {next_use} is …"."""
    if used_in_last_day < quota:
        return
    when = ""
    if oldest_use_ms:
        free_at = datetime.fromtimestamp((oldest_use_ms + DAY_MS) / 1000, UTC)
        when = f" The next {next_use} is possible after {free_at:%Y-%m-%d %H:%M} UTC."
    raise refusal(f"Your shop may {may} a day and has used all of them.{when} The operator "
                  "can raise the quota.", errcode="MERCATO_QUOTA_EXCEEDED", status=429)
