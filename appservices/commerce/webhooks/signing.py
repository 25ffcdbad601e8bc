"""Webhook signatures: how Mercato signs a delivery, and how a receiver checks one.

The scheme payment providers use: `Mercato-Signature: t=<unix seconds>,v1=<hex>`, where
the hex is HMAC-SHA256, keyed with the shop's secret, of `<t>.<body>`. The time inside
the signed text lets a receiver refuse an old delivery replayed. Pure and standard-library
only, so a shop's back-end may copy `verify` as it is (docs/webhooks.md shows it).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Mercato-Signature"
TIMESTAMP_HEADER = "Mercato-Timestamp"
EVENT_ID_HEADER = "Mercato-Event-Id"
TOLERANCE_SECONDS = 300  # how old a signed delivery a receiver should still accept


class BadSignature(ValueError):
    """The delivery was not signed with this secret, or not lately."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` keyed with `secret`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: int,
           tolerance: int = TOLERANCE_SECONDS) -> int:
    """Check a `Mercato-Signature` header against the raw body; returns its timestamp.

    Raises BadSignature when the header is malformed, no `v1` matches, or the timestamp is
    more than `tolerance` seconds away from `now` (Unix seconds).
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise BadSignature("the header has no t=<timestamp> or no v1=<signature>")
    if abs(now - timestamp) > tolerance:
        raise BadSignature(f"signed at {timestamp}, more than {tolerance} s from now ({now})")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise BadSignature("no v1 signature matches the body with this secret")
    return timestamp
