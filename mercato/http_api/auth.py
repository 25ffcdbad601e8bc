"""Reading a bearer token the one way every Mercato endpoint reads it.

Only `Authorization: Bearer <token>` counts (the scheme spelled so, never a token in
the query string); what a missing or wrong token means is each endpoint's own answer.
"""

from __future__ import annotations

import hmac

from aiohttp import web

SCHEME = "Bearer "


def bearer_token(request: web.BaseRequest) -> str | None:
    """The token of `Authorization: Bearer <token>`, or None when there is none."""
    header = request.headers.get("Authorization", "")
    if not header.startswith(SCHEME):
        return None
    return header.removeprefix(SCHEME).strip() or None


def same_secret(given: str, expected: str) -> bool:
    """Compare a token with a secret in constant time, so timing tells nothing of it."""
    return hmac.compare_digest(given.encode(), expected.encode())
