"""How the bridge's HTTP routes are declared, authenticated and answered.

Each route is declared once with `route(method, path, Spec(...))` in the bridge's own
table; `add_api_routes` mounts them behind the core's error middleware (`mercato.http_api`,
worded here) and adds CORS headers to the identity service (web clients call it from the
browser). The routes know nothing of Matrix events: they call `Discovery`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bridges.contacts.db import store
from bridges.contacts.discovery import Discovery
from mercato.config import MercatoConfig
from mercato.db import Database
from mercato.http_api import (
    ApiError,
    ErrorAnswers,
    Handler,
    RouteTable,
    bearer_token,
    error_middleware,
    json_object,
    same_secret,
)

IDENTITY_PREFIX = "/_matrix/identity/v2"
SERVICE_PREFIX = "/_mercato/contacts/v1"
MAX_BODY_BYTES = 4 * 1024 * 1024
TOO_LARGE_HINT = "send less at a time."


@dataclass(frozen=True)
class ApiContext:
    db: Database
    discovery: Discovery
    config: MercatoConfig
    http: Callable[[], aiohttp.ClientSession]  # for OpenID checks with the homeserver


CONTEXT = web.AppKey("contacts_api", ApiContext)


ROUTES = RouteTable()
route = ROUTES.route


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer(request: web.Request) -> str:
    """The request's bearer token; every route that takes one refuses a request without."""
    token = bearer_token(request)
    if token is None:
        raise ApiError("Send the access token in an 'Authorization: Bearer …' header.",
                       errcode="M_UNAUTHORIZED", status=401)
    return token


async def identity_user(request: web.Request) -> str:
    """The Matrix user an identity-service token belongs to."""
    ctx = request.app[CONTEXT]
    owner = await store.token_owner(ctx.db, token_hash(bearer(request)))
    if owner is None:
        raise ApiError(f"Unknown or logged-out token; register again at {IDENTITY_PREFIX}"
                       "/account/register.", errcode="M_UNKNOWN_TOKEN", status=401)
    return owner


def require_service(request: web.Request) -> None:
    """Only the bridge's own tools (holding the appservice's as_token) may pass."""
    if not same_secret(bearer(request), request.app[CONTEXT].config.contacts.as_token):
        raise ApiError("This token may not use the bridge's service API.",
                       errcode="M_FORBIDDEN", status=403)


async def json_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request's body, a JSON object ({} when empty), at most `limit` bytes."""
    return await json_object(request, limit=limit, hint=TOO_LARGE_HINT)


CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
}


ANSWERS = ErrorAnswers(
    not_found="There is no {path} here.",
    not_allowed="{method} is not allowed here; use {allowed}.",
    too_large_hint=TOO_LARGE_HINT,
    failed="Something went wrong on our side; nothing was changed. Try again later.")


def in_identity_service(request: web.Request) -> bool:
    return request.path.startswith(IDENTITY_PREFIX)


def in_api(request: web.Request) -> bool:
    return in_identity_service(request) or request.path.startswith(SERVICE_PREFIX)


@web.middleware
async def identity_cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Browsers may call the identity service from any web client, errors included."""
    if not in_identity_service(request):
        return await handler(request)
    if request.method == "OPTIONS":
        return web.Response(headers=CORS_HEADERS)
    response = await handler(request)
    response.headers.update(CORS_HEADERS)
    return response


api_errors = error_middleware(in_api, ANSWERS, lambda _request: MAX_BODY_BYTES)


def add_api_routes(app: web.Application, context: ApiContext) -> None:
    from bridges.contacts.api import friends, identity, pages, service  # noqa: F401 (register)

    app.middlewares.append(identity_cors)  # outside, so error answers carry CORS too
    app.middlewares.append(api_errors)
    app[CONTEXT] = context
    ROUTES.mount(app)
