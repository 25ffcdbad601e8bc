"""Signing in inside a Matrix client: the storefront, opened as a room widget, asks the
client for an OpenID token through the widget API (`assets/widget-signin.js`) and POSTs it
here; the token's own homeserver says whose it is (`mercato/matrix/openid.py`), so users of
every homeserver sign in, and nobody gives Mercato a password."""

from __future__ import annotations

from aiohttp import web

from appservices.commerce.http import CONTEXT
from appservices.commerce.web import links, rules, sessions
from appservices.commerce.web.services import SIGNIN
from mercato.logging import get_logger
from mercato.matrix.openid import OpenIdRefused, openid_user

log = get_logger(__name__)


def _refusal(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status,
                             headers={"Cache-Control": "no-store"})


async def sign_in_with_openid(request: web.Request) -> web.Response:
    """Form fields: csrf_token, access_token, matrix_server_name. Answers JSON: the user ID
    signed in, or `error` with what happened."""
    form = await sessions.check_csrf(request)
    ctx = request.app[CONTEXT]
    services = request.app[SIGNIN]
    address = request.remote or "unknown"
    if not await links.within_limit(ctx.db, rules.OPENID_PER_ADDRESS, f"openid-ip:{address}"):
        return _refusal(429, "Too many sign-ins from this address; wait a few minutes.")
    try:
        user_id = await openid_user(services.http(), services.network,
                                    form.get("access_token"), form.get("matrix_server_name"))
    except OpenIdRefused as e:
        log.info("web.openid_refused", server=str(form.get("matrix_server_name", ""))[:80],
                 reason=e.message)
        return _refusal(502 if e.unreachable else 401, e.message)
    response = web.json_response({"user_id": user_id}, headers={"Cache-Control": "no-store"})
    await sessions.start_session(request, response, user_id, "openid", embedded=True)
    return response
