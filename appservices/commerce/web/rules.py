"""The rules of web sign-in, without I/O: secrets and their hashes, how long a session and a
sign-in link live, which `next=` targets are safe, CSRF tokens, allowed origins, rate limits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

SESSION_COOKIE = "mercato_session"
# The browser's CSRF secret: a random value the pages' tokens are derived from.
CSRF_COOKIE = "mercato_csrf"
CSRF_FIELD = "csrf_token"

MINUTE_MS = 60 * 1000
DAY_MS = 24 * 60 * MINUTE_MS
SESSION_IDLE_MS = 7 * DAY_MS      # unused for a week: signed out
SESSION_MAX_MS = 30 * DAY_MS      # whatever the use: signed out after a month
SESSION_TOUCH_MS = MINUTE_MS      # last_seen_at is written at most once a minute
LINK_VALID_MS = 10 * MINUTE_MS

SIGNIN_PATH = "/web/signin"
HOME_PATH = "/"


def new_secret() -> str:
    """A random, URL-safe secret of 256 bits: session IDs, link tokens, CSRF secrets."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """What the database keeps of a secret. SHA-256 suffices: the secrets are random."""
    return hashlib.sha256(secret.encode()).hexdigest()


def session_alive(created_at: int, last_seen_at: int, now: int) -> bool:
    return now - last_seen_at < SESSION_IDLE_MS and now - created_at < SESSION_MAX_MS


def needs_touch(last_seen_at: int, now: int) -> bool:
    return now - last_seen_at >= SESSION_TOUCH_MS


def safe_next(target: str | None, default: str = HOME_PATH) -> str:
    """`target` if it is a path on this site, else `default`: a sign-in never sends the
    browser to another site (no scheme, no host, no `//host`, no backslash tricks)."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return default
    if target.startswith("//") or "\\" in target or any(ord(c) < 0x21 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def csrf_token(key: bytes, browser_secret: str, session_id: str | None) -> str:
    """The token a form carries: bound to the browser's CSRF secret and, once signed in, to
    the session, so a token picked up before signing in (or on another browser) fails."""
    message = f"{browser_secret}\x00{session_id or ''}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def csrf_matches(key: bytes, browser_secret: str | None, session_id: str | None,
                 sent: str | None) -> bool:
    if not browser_secret or not sent:
        return False
    return hmac.compare_digest(csrf_token(key, browser_secret, session_id), sent)


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lowercased; '' if it has none."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def same_origin_request(origin: str | None, referer: str | None,
                        allowed: tuple[str, ...]) -> bool:
    """A POST's Origin (or, without one, its Referer) must be one of this site's origins.
    A request carrying neither is let through: the CSRF token is the check then."""
    if origin and origin != "null":
        return origin.lower() in allowed
    if origin == "null":
        return False
    if referer:
        return origin_of(referer) in allowed
    return True


@dataclass(frozen=True)
class CookieFlags:
    secure: bool
    samesite: str
    partitioned: bool


def session_cookie_flags(site_url: str, *, embedded: bool = False) -> CookieFlags:
    """Lax, HttpOnly, Secure over https. A session started inside a client's widget frame
    on https is `SameSite=None; Partitioned` instead: the frame is on the client's site, so a
    Lax cookie would never be sent there, and partitioning keeps it in that site's jar only."""
    https = site_url.startswith("https://")
    if embedded and https:
        return CookieFlags(secure=True, samesite="None", partitioned=True)
    return CookieFlags(secure=https, samesite="Lax", partitioned=False)


@dataclass(frozen=True)
class RateLimit:
    """At most `hits` requests per `window_ms` in one bucket."""

    hits: int
    window_ms: int

    def window_start(self, now: int) -> int:
        return now - now % self.window_ms


# Sign-in links asked for: per Matrix ID (the person receiving DMs) and per address.
LINKS_PER_USER = RateLimit(hits=3, window_ms=15 * MINUTE_MS)
LINKS_PER_ADDRESS = RateLimit(hits=10, window_ms=15 * MINUTE_MS)
# OpenID sign-ins per address (each one costs a request to a homeserver).
OPENID_PER_ADDRESS = RateLimit(hits=30, window_ms=15 * MINUTE_MS)


def csrf_key(service_secret: str) -> bytes:
    """The CSRF signing key, derived from a secret of the service's own (never sent)."""
    return hmac.new(service_secret.encode(), b"mercato web csrf", hashlib.sha256).digest()
