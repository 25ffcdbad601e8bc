"""One-time sign-in links: made for a Matrix user (by the web form, or the shop bot's `web`
command through the API), spent once within ten minutes, and the rate limits on asking."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlencode

from appservices.commerce.shops.storage import now_ms
from appservices.commerce.web import rules
from appservices.commerce.web import storage as rows
from mercato.db import Database


@dataclass(frozen=True)
class LoginLink:
    url: str
    token_hash: str
    expires_at: int


async def create_login_link(db: Database, site_url: str, user_id: str,
                            next_path: str | None = None) -> LoginLink:
    """A new link for `user_id`; only its token's hash is stored."""
    token = rules.new_secret()
    now = now_ms()
    token_hash = rules.hash_secret(token)
    expires_at = now + rules.LINK_VALID_MS
    await rows.insert_login_token(db, token_hash, user_id, now, expires_at)
    query = {"token": token}
    target = rules.safe_next(next_path, default="")
    if target:
        query["next"] = target
    return LoginLink(url=f"{site_url}{rules.SIGNIN_PATH}/link?{urlencode(query)}",
                     token_hash=token_hash, expires_at=expires_at)


class LinkState(Enum):
    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


async def link_state(db: Database, token: str) -> tuple[LinkState, str | None]:
    """What a link is now, without spending it (a link preview may fetch the page)."""
    row = await rows.get_login_token(db, rules.hash_secret(token))
    if row is None:
        return LinkState.UNKNOWN, None
    if row.used_at is not None:
        return LinkState.USED, row.user_id
    if row.expires_at <= now_ms():
        return LinkState.EXPIRED, row.user_id
    return LinkState.VALID, row.user_id


async def spend_link(db: Database, token: str, session_hash: str) -> str | None:
    """Spend the link and open the session; the user, or None if it is not valid now."""
    return await rows.use_login_token(db, rules.hash_secret(token), now_ms(), session_hash,
                                      "link")


async def within_limit(db: Database, limit: rules.RateLimit, bucket: str) -> bool:
    """Count one request in `bucket`; False once the window's allowance is spent."""
    return await rows.count_hit(db, bucket, limit.window_start(now_ms())) <= limit.hits


async def prune(db: Database) -> None:
    now = now_ms()
    await rows.prune(db, idle_before=now - rules.SESSION_IDLE_MS,
                     created_before=now - rules.SESSION_MAX_MS, now=now,
                     windows_before=now - rules.DAY_MS)
