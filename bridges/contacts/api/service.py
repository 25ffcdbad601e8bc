"""The bridge's service API for its own tools (`mercato contacts …`), behind the as_token.

The CLI reads a contacts file on the operator's machine and sends only the spec's
peppered hashes here, on behalf of the user it names; that user's quota is charged.
"""

from __future__ import annotations

from aiohttp import web

from bridges.contacts.api.identity import ALGORITHM, lookup_addresses, run_lookup
from bridges.contacts.api.routes import (
    CONTEXT,
    SERVICE_PREFIX,
    json_body,
    require_service,
    route,
)
from bridges.contacts.commands import user_region
from bridges.contacts.db import store
from mercato.commands import ArgumentError, matrix_user_id
from mercato.http_api import ApiError, Spec


def _user(value: object) -> str:
    try:
        return matrix_user_id(value if isinstance(value, str) else "")
    except ArgumentError:
        raise ApiError("'user_id' must be a Matrix ID such as @alice:example.org.",
                       errcode="M_INVALID_PARAM") from None


@route("GET", f"{SERVICE_PREFIX}/hash_details",
       Spec("How to hash, the limits, and a user's region", auth="service"))
async def hash_details(request: web.Request) -> web.Response:
    require_service(request)
    ctx = request.app[CONTEXT]
    limits = ctx.discovery.limits
    region = ctx.config.contacts.default_region
    if "user_id" in request.query:
        region = await user_region(ctx.db, _user(request.query["user_id"])) or region
    return web.json_response({
        "algorithm": ALGORITHM, "lookup_pepper": ctx.config.contacts.lookup_pepper,
        "max_identifiers": limits.max_identifiers, "max_contacts": limits.max_contacts,
        "max_upload_bytes": limits.max_upload_bytes, "region": region or None,
    })


@route("POST", f"{SERVICE_PREFIX}/lookup",
       Spec("Look up hashed addresses for a user of this server (charged to them)",
            auth="service"))
async def lookup(request: web.Request) -> web.Response:
    require_service(request)
    ctx = request.app[CONTEXT]
    body = await json_body(request)
    user_id = _user(body.get("user_id"))
    hashes = lookup_addresses({"algorithm": ALGORITHM, **body},
                              ctx.config.contacts.lookup_pepper)
    source = body.get("source", "cli")
    if source not in ("cli", "script"):
        raise ApiError("'source' must be \"cli\" or \"script\" (or left out, for \"cli\").",
                       errcode="M_INVALID_PARAM")
    return await run_lookup(request, user_id, hashes, ip=None, source=source)


@route("GET", f"{SERVICE_PREFIX}/stats",
       Spec("Counts for the operator: opt-ins, imports, matches, refusals", auth="service"))
async def stats(request: web.Request) -> web.Response:
    require_service(request)
    return web.json_response(await store.stats(request.app[CONTEXT].db))
