"""How the bridge's HTTP routes are declared, authenticated and answered.

Each route is declared once with `route(method, path, Spec(...))`; `add_api_routes`
mounts them with a middleware that turns `ApiError` into Matrix-style JSON errors,
adds CORS headers to the identity service (web clients call it from the browser) and
caps request bodies. The routes know nothing of Matrix events: they call `Discovery`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bridges.contacts.db import store
from bridges.contacts.discovery import Discovery
from mercato.config import MercatoConfig
from mercato.db import Database
from mercato.logging import get_logger
from mercato.web import json_error

log = get_logger(__name__)

IDENTITY_PREFIX = "/_matrix/identity/v2"
SERVICE_PREFIX = "/_mercato/contacts/v1"
MAX_BODY_BYTES = 4 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ApiContext:
    db: Database
    discovery: Discovery
    config: MercatoConfig
    http: Callable[[], aiohttp.ClientSession]  # for OpenID checks with the homeserver


CONTEXT = web.AppKey("contacts_api", ApiContext)


@dataclass(frozen=True)
class Spec:
    summary: str
    auth: str  # "none" | "identity" (an identity-service token) | "service" (the as_token)


ROUTES: list[tuple[str, str, Handler, Spec]] = []


def route(method: str, path: str, spec: Spec) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((method, path, handler, spec))
        return handler
    return register


class ApiError(Exception):
    def __init__(self, status: int, errcode: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.message = message
        self.extra = extra


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        raise ApiError(401, "M_UNAUTHORIZED",
                       "Send the access token in an 'Authorization: Bearer …' header.")
    return header[7:].strip()


async def identity_user(request: web.Request) -> str:
    """The Matrix user an identity-service token belongs to."""
    ctx = request.app[CONTEXT]
    owner = await store.token_owner(ctx.db, token_hash(_bearer(request)))
    if owner is None:
        raise ApiError(401, "M_UNKNOWN_TOKEN", "Unknown or logged-out token; register again "
                                               f"at {IDENTITY_PREFIX}/account/register.")
    return owner


def require_service(request: web.Request) -> None:
    """Only the bridge's own tools (holding the appservice's as_token) may pass."""
    token = _bearer(request).encode()
    expected = request.app[CONTEXT].config.contacts.as_token.encode()
    if not hmac.compare_digest(token, expected):
        raise ApiError(403, "M_FORBIDDEN", "This token may not use the bridge's service API.")


async def json_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    raw = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, "M_TOO_LARGE", f"Request body over {limit // 1024} KiB; "
                                               "send less at a time.")
    try:
        body = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "M_NOT_JSON", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "M_BAD_JSON", "The request body must be a JSON object.")
    return body


CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
}


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    identity = path.startswith(IDENTITY_PREFIX) or path == IDENTITY_PREFIX.rstrip("/")
    if not identity and not path.startswith(SERVICE_PREFIX):
        return await handler(request)
    if identity and request.method == "OPTIONS":
        return web.Response(headers=CORS_HEADERS)
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        response: web.StreamResponse = json_error(
            413, "M_TOO_LARGE", f"Request body over {MAX_BODY_BYTES // 1024} KiB; send less "
                                "at a time.")
    else:
        try:
            response = await handler(request)
        except ApiError as e:
            response = json_error(e.status, e.errcode, e.message, **e.extra)
        except web.HTTPNotFound:
            response = json_error(404, "M_UNRECOGNIZED", f"There is no {path} here.")
        except web.HTTPMethodNotAllowed as e:
            response = json_error(405, "M_UNRECOGNIZED", f"{request.method} is not allowed "
                                  f"here; use {', '.join(sorted(e.allowed_methods))}.")
        except web.HTTPException:
            raise
        except Exception:
            log.exception("api.failed", path=path, method=request.method)
            response = json_error(500, "M_UNKNOWN", "Something went wrong on our side; nothing "
                                                    "was changed. Try again later.")
    if identity:
        response.headers.update(CORS_HEADERS)
    return response


def add_api_routes(app: web.Application, context: ApiContext) -> None:
    from bridges.contacts.api import identity, pages, service  # noqa: F401 (they register)

    app.middlewares.append(api_errors)
    app[CONTEXT] = context
    for method, path, handler, _spec in ROUTES:
        app.router.add_route(method, path, handler)
