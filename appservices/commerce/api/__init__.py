"""The commerce HTTP API: one API for the shop bot, web pages and shops' own scripts.

It knows nothing of Matrix events; it reads and changes the same domain data the
Matrix handlers use.
"""

from __future__ import annotations

from aiohttp import web

from appservices.commerce.db import store
from mercato.config import MercatoConfig
from mercato.db import Database
from mercato.web import json_error

API_PREFIX = "/api/v1"

DB_KEY = web.AppKey("commerce_db", Database)
CONFIG_KEY = web.AppKey("commerce_config", MercatoConfig)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None


async def _merchant_from_key(request: web.Request) -> store.Merchant | web.Response:
    key = _bearer(request)
    if not key:
        return json_error(401, "M_MISSING_TOKEN",
                          "Send your shop's API key as 'Authorization: Bearer <key>'")
    merchant = await store.merchant_for_api_key(request.app[DB_KEY], key)
    if merchant is None:
        return json_error(401, "M_UNKNOWN_TOKEN",
                          "This API key is unknown or revoked; create a new one")
    return merchant


async def _channel_summaries(db: Database, slug: str) -> list[dict[str, object]]:
    summaries = []
    for channel in await store.channels_of(db, store.MerchantSlug(slug)):
        followers = await db.fetchval("SELECT COUNT(*) FROM follower WHERE room_id=$1",
                                      channel.room_id)
        summaries.append({"room_id": channel.room_id, "alias": channel.alias,
                          "name": channel.name, "primary": bool(channel.is_primary),
                          "followers": followers})
    return summaries


async def get_own_merchant(request: web.Request) -> web.Response:
    merchant = await _merchant_from_key(request)
    if isinstance(merchant, web.Response):
        return merchant
    db = request.app[DB_KEY]
    return web.json_response({
        "slug": merchant.slug,
        "name": merchant.name,
        "user_id": merchant.mxid,
        "owner": merchant.owner_mxid,
        "status": merchant.status,
        "followers": await store.follower_count(db, merchant.slug),
        "channels": await _channel_summaries(db, merchant.slug),
    })


async def list_shops(request: web.Request) -> web.Response:
    """The public merchant directory: approved shops and their channels."""
    db = request.app[DB_KEY]
    shops = []
    for merchant in await store.list_merchants(db, status="approved"):
        channels = await store.channels_of(db, merchant.slug)
        shops.append({"slug": merchant.slug, "name": merchant.name,
                      "description": merchant.description, "user_id": merchant.mxid,
                      "channels": [c.alias for c in channels]})
    return web.json_response({"shops": shops})


def add_api_routes(app: web.Application, db: Database, config: MercatoConfig) -> None:
    app[DB_KEY] = db
    app[CONFIG_KEY] = config
    app.router.add_get(f"{API_PREFIX}/merchant", get_own_merchant)
    app.router.add_get(f"{API_PREFIX}/shops", list_shops)
