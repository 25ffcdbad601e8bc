"""API routes for a shop's channels and for follower reports."""

from __future__ import annotations

import re

from aiohttp import web

from appservices.commerce.auth import require_user
from appservices.commerce.errors import Conflict, InvalidInput, NotFound
from appservices.commerce.http import (
    STRING,
    caller,
    json_body,
    route,
    signed_in_caller,
    staff_caller,
)
from appservices.commerce.rooms import room_id_of
from appservices.commerce.shops import operations as merchants
from appservices.commerce.shops import rules as shop_rules
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action
from mercato.http_api import Spec
from mercato.values import plain_text

CHANNEL_SUFFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,18}[a-z0-9]$")
MAX_CHANNELS = 20


async def _channel_views(db, slug: str) -> list[dict]:
    views = []
    for channel in await store.channels_of(db, store.MerchantSlug(slug)):
        followers = await store.room_follower_count(db, channel.room_id)
        views.append({"room_id": channel.room_id, "alias": channel.alias, "name": channel.name,
                      "primary": channel.is_primary, "followers": followers})
    return views


@route("GET", "/shops/{slug}/channels", Spec("The shop's channels with their followers",
                                             auth="none"))
async def list_channels(request: web.Request) -> web.Response:
    ctx, _ = await caller(request)
    merchant = await merchants.get_shop(ctx.db, request.match_info["slug"])
    if merchant.status not in ("approved", "suspended"):
        raise NotFound(f"There is no shop '{merchant.slug}'.")
    return web.json_response({"channels": await _channel_views(ctx.db, merchant.slug)})


@route("POST", "/shops/{slug}/channels", Spec(
    "Open another channel, e.g. per region or product line: #<prefix><slug>-<suffix>",
    auth="staff", success=201, body={"suffix": STRING, "name": STRING}))
async def open_channel(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    merchant = await merchants.require(ctx.db, principal, slug, Action.EDIT_SHOP)
    if merchant.status != "approved":
        raise Conflict(f"The shop is {merchant.status}; only an open shop opens channels.",
                       errcode="MERCATO_WRONG_STATUS")
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("body", "send {\"suffix\": …, \"name\": …}")
    suffix = body.get("suffix")
    if not isinstance(suffix, str) or not CHANNEL_SUFFIX.match(suffix):
        raise InvalidInput("suffix", "use 2-20 lowercase letters, digits or '-' (e.g. 'north')")
    name = shop_rules.validate_name(body.get("name"))
    existing = await store.channels_of(ctx.db, store.MerchantSlug(slug))
    if len(existing) >= MAX_CHANNELS:
        raise Conflict(f"A shop can have {MAX_CHANNELS} channels.",
                       errcode="MERCATO_TOO_MANY_CHANNELS")
    if any(c.alias.startswith(f"#{ctx.config.user_prefix}{slug}-{suffix}:") for c in existing):
        raise Conflict(f"The channel '{suffix}' exists already.", errcode="MERCATO_CHANNEL_EXISTS")
    channel = await ctx.matrix.open_channel(merchant, suffix, name)  # type: ignore[attr-defined]
    await store.audit(ctx.db, slug, principal.actor, "channel_opened", alias=channel.alias)
    return web.json_response({"room_id": channel.room_id, "alias": channel.alias,
                              "name": channel.name, "primary": False}, status=201)


@route("POST", "/reports", Spec(
    "A follower reports a post (the shop bot's `report` command); the operator sees it",
    auth="any", success=201, body={"room_id": STRING, "event_id": STRING, "reason": STRING}))
async def report_post(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    principal = require_user(principal, "reports are made by a Matrix user")
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("body", "send {\"room_id\": …, \"event_id\": …, \"reason\": …}")
    event_id = body.get("event_id")
    reason = plain_text("reason", body.get("reason"), 500, required=True)
    what = "the room ID (!…) or alias (#…) of a shop's channel"
    room_id = await room_id_of(ctx.matrix, "room_id", body.get("room_id"), what=what)
    channel = await store.get_channel(ctx.db, room_id)
    if channel is None:
        raise InvalidInput("room_id", f"must be {what}")
    if not isinstance(event_id, str) or not event_id.startswith("$"):
        raise InvalidInput("event_id", "must be the event ID ($…) of the reported post")
    report_id = await store.insert_report(ctx.db, channel.merchant_slug, room_id, event_id,
                                          principal.user_id, reason)
    await store.audit(ctx.db, channel.merchant_slug, principal.user_id, "post_reported",
                      report=report_id, event_id=event_id)
    return web.json_response({"report": report_id, "shop": channel.merchant_slug}, status=201)


@route("GET", "/reports", Spec("Follower reports, newest first (operator)", auth="operator"))
async def list_reports(request: web.Request) -> web.Response:
    ctx, principal = await signed_in_caller(request)
    merchants.require_operator(principal)
    return web.json_response({"reports": await store.recent_reports(ctx.db)})
