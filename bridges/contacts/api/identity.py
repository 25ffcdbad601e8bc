"""The Matrix Identity Service v2 lookup API, for clients that look people up by 3PID.

Served: the status check, terms (none), account registration with an OpenID token
(checked with the homeserver), account/logout, hash_details and the hashed lookup.
Not served: 3PID binding and validation (`/validate/*`, `/3pid/*`), invitations and
signing keys — opt-in happens with the bridge bot instead (docs/contacts.md).

Accounts of any homeserver can register: the OpenID token is checked with the server
it names (ours directly; another through its federation API, found as the spec says,
only at public addresses). Users of another homeserver share one daily lookup quota
(`contacts.lookups_per_remote_server_per_day`), since its operator can make any
number of accounts.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from bridges.contacts.api.routes import (
    CONTEXT,
    IDENTITY_PREFIX,
    bearer,
    identity_user,
    json_body,
    route,
    token_hash,
)
from bridges.contacts.db import store
from bridges.contacts.discovery import QuotaExceeded, Refused
from bridges.contacts.hashing import LookupHash
from mercato.http_api import ApiError, Spec
from mercato.logging import get_logger
from mercato.matrix.openid import OpenIdRefused, check_token_shape, openid_user

log = get_logger(__name__)

ALGORITHM = "sha256"
MAX_ADDRESS_CHARS = 128


@route("GET", IDENTITY_PREFIX, Spec("Status check: the identity service is here", auth="none"))
async def status(request: web.Request) -> web.Response:
    return web.json_response({})


@route("GET", f"{IDENTITY_PREFIX}/terms", Spec("Terms of service: none to accept", auth="none"))
async def terms(request: web.Request) -> web.Response:
    return web.json_response({"policies": {}})


@route("POST", f"{IDENTITY_PREFIX}/terms", Spec("Accept terms (there are none)",
                                                 auth="identity"))
async def accept_terms(request: web.Request) -> web.Response:
    await identity_user(request)
    await json_body(request)
    return web.json_response({})


@route("POST", f"{IDENTITY_PREFIX}/account/register",
       Spec("Exchange an OpenID token from the homeserver for an access token", auth="none"))
async def register(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    body = await json_body(request, limit=16 * 1024)
    openid, server = body.get("access_token"), body.get("matrix_server_name")
    try:
        check_token_shape(openid, server)
    except OpenIdRefused as e:
        raise ApiError(e.message, errcode="M_BAD_JSON") from None
    try:
        # The token's server vouches only for its own users (mercato/matrix/openid.py).
        user_id = await openid_user(ctx.http(), ctx.config, openid, server)
    except OpenIdRefused as e:
        if e.reason == "undiscoverable":
            raise ApiError(e.message, errcode="M_FORBIDDEN", status=403) from None
        if e.reason == "no_answer":
            raise ApiError(e.message, errcode="M_UNKNOWN", status=502) from None
        raise ApiError("The homeserver did not accept this OpenID token; request a new one.",
                       errcode="M_UNKNOWN_TOKEN", status=401) from None
    token = secrets.token_urlsafe(32)
    await store.add_token(ctx.db, token_hash(token), user_id)
    log.info("identity.registered", user_id=user_id)
    return web.json_response({"token": token, "access_token": token})


@route("GET", f"{IDENTITY_PREFIX}/account", Spec("Who this token belongs to", auth="identity"))
async def account(request: web.Request) -> web.Response:
    return web.json_response({"user_id": await identity_user(request)})


@route("POST", f"{IDENTITY_PREFIX}/account/logout", Spec("Forget this token", auth="identity"))
async def logout(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    await identity_user(request)
    await store.remove_token(ctx.db, token_hash(bearer(request)))
    return web.json_response({})


@route("GET", f"{IDENTITY_PREFIX}/hash_details",
       Spec("The algorithm and pepper to hash addresses with", auth="identity"))
async def hash_details(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    await identity_user(request)
    return web.json_response({"algorithms": [ALGORITHM],
                              "lookup_pepper": ctx.config.contacts.lookup_pepper})


def lookup_addresses(body: dict[str, object], pepper: str) -> list[LookupHash]:
    """The hashed addresses of a lookup request, checked as the spec says."""
    algorithm = body.get("algorithm")
    if algorithm != ALGORITHM:
        raise ApiError(f"Unsupported algorithm {algorithm!r}; use {ALGORITHM!r} (see "
                       "hash_details).", errcode="M_INVALID_PARAM")
    if body.get("pepper") != pepper:
        raise ApiError("The pepper is not this server's; get it from hash_details.",
                       errcode="M_INVALID_PEPPER", algorithm=ALGORITHM, lookup_pepper=pepper)
    addresses = body.get("addresses")
    if not isinstance(addresses, list) or not all(
            isinstance(a, str) and 0 < len(a) <= MAX_ADDRESS_CHARS for a in addresses):
        raise ApiError("'addresses' must be a list of hashed addresses.",
                       errcode="M_INVALID_PARAM")
    return [LookupHash(a) for a in addresses]


async def run_lookup(request: web.Request, user_id: str, hashes: list[LookupHash], *,
                     ip: str | None, source: str) -> web.Response:
    ctx = request.app[CONTEXT]
    try:
        mappings = await ctx.discovery.lookup(user_id, hashes, ip=ip, source=source)
    except Refused as e:
        raise ApiError(f"Refused: {e.reason}. Look up fewer at a time.", errcode="M_TOO_LARGE",
                       status=413) from None
    except QuotaExceeded as e:
        per = "homeserver (its users together)" if e.subject_kind == "server" \
            else e.subject_kind
        raise ApiError(f"Lookup quota reached ({e.limit:,} a day per {per}).",
                       errcode="M_LIMIT_EXCEEDED", status=429,
                       retry_after_ms=e.retry_after_s * 1000) from None
    return web.json_response({"mappings": mappings})


@route("POST", f"{IDENTITY_PREFIX}/lookup",
       Spec("Matrix IDs of opted-in users for hashed phone numbers and emails", auth="identity"))
async def lookup(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    user_id = await identity_user(request)
    hashes = lookup_addresses(await json_body(request), ctx.config.contacts.lookup_pepper)
    return await run_lookup(request, user_id, hashes, ip=request.remote, source="identity")
