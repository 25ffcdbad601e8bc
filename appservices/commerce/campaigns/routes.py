"""API routes for channels, campaigns, media, coupons and stats."""

from __future__ import annotations

import io
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from appservices.commerce.auth import require_user
from appservices.commerce.campaigns import coupons, operations
from appservices.commerce.campaigns import stats as campaign_stats
from appservices.commerce.campaigns import storage as rows
from appservices.commerce.catalog import cards as card_edits
from appservices.commerce.circle import storage as circle_rows
from appservices.commerce.errors import CommerceError, InvalidInput
from appservices.commerce.http import STRING, caller, json_body, route, staff_caller
from appservices.commerce.shops import follow_reward
from appservices.commerce.shops import operations as merchants
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action
from mercato.db import transaction
from mercato.http_api import Spec

MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp",
               "GIF": "image/gif"}


def campaign_view(campaign: rows.Campaign) -> dict[str, Any]:
    return {"id": campaign.id, "kind": campaign.kind, "fields": campaign.fields,
            "image_mxc": campaign.image_mxc or None, "silent": campaign.silent,
            "channels": campaign.channel_ids or "all", "coupon_id": campaign.coupon_id,
            "state": campaign.state, "scheduled_at": campaign.scheduled_at,
            "preview_event_id": campaign.preview_event_id, "created_by": campaign.created_by,
            "created_at": campaign.created_at, "sent_at": campaign.sent_at,
            "retracted_at": campaign.retracted_at}


def _campaign_id(request: web.Request) -> int:
    try:
        return int(request.match_info["campaign_id"])
    except ValueError:
        raise InvalidInput("campaign_id", "must be a number") from None


CAMPAIGN_BODY = {"kind": STRING, "fields": {"type": "object"}, "image_mxc": STRING,
                 "image_info": {"type": "object"}, "silent": {"type": "boolean"},
                 "channels": {"type": "array"}, "coupon": {"type": "object"}}


@route("POST", "/shops/{slug}/media", Spec(
    "Upload a campaign image (PNG, JPEG, WebP or GIF, at most 10 MiB); returns its mxc:// URI",
    auth="staff", success=201))
async def upload_media(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    merchant = await merchants.require(ctx.db, principal,
                                       slug, Action.RUN_CAMPAIGNS)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_IMAGE_BYTES:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    if size > MAX_IMAGE_BYTES:
        raise CommerceError(f"The image is over {MAX_IMAGE_BYTES // (1024 * 1024)} MiB; send a "
                            "smaller one.", errcode="M_TOO_LARGE", status=413)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise InvalidInput("body", "is not a PNG, JPEG, WebP or GIF image") from None
    if kind not in IMAGE_TYPES:
        raise InvalidInput("body", f"{kind} images are not accepted; use PNG, JPEG, WebP or GIF")
    mimetype = IMAGE_TYPES[kind]
    filename = f"{merchant.slug}.{kind.lower()}"
    mxc = await ctx.matrix.upload_image(merchant, data, mimetype, filename)  # type: ignore[attr-defined]
    info = {"mimetype": mimetype, "size": len(data), "w": width, "h": height,
            "filename": filename}
    return web.json_response({"image_mxc": mxc, "image_info": info}, status=201)


@route("POST", "/shops/{slug}/campaigns", Spec(
    "Draft a campaign: kind product|sale|coupon|text, its fields, an optional image",
    auth="staff", success=201, body=CAMPAIGN_BODY))
async def create_campaign(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    campaign = await operations.create_campaign(ctx.db, ctx.matrix, principal,
                                               slug, await json_body(request))
    return web.json_response(campaign_view(campaign), status=201)


@route("GET", "/shops/{slug}/campaigns", Spec("The shop's campaigns, newest first",
                                              auth="staff"))
async def list_campaigns(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    await merchants.require(ctx.db, principal, slug, Action.READ_STATS)
    return web.json_response({"campaigns": [campaign_view(c)
                                            for c in await rows.campaigns_of(ctx.db, slug)]})


@route("GET", "/shops/{slug}/campaigns/{campaign_id}", Spec(
    "One campaign with its delivery per channel", auth="staff"))
async def get_campaign(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    _, campaign = await operations.get_campaign(ctx.db, principal,
                                               slug, _campaign_id(request),
                                               Action.READ_STATS)
    view = campaign_view(campaign)
    view["deliveries"] = await rows.outbox_of(ctx.db, campaign.id)
    return web.json_response(view)


@route("POST", "/shops/{slug}/campaigns/{campaign_id}/preview", Spec(
    "Send the post to the shop's staff room as a preview", auth="staff"))
async def preview_campaign(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    campaign = await operations.preview(ctx.db, ctx.matrix, principal,
                                       slug, _campaign_id(request))
    return web.json_response(campaign_view(campaign))


@route("POST", "/shops/{slug}/campaigns/{campaign_id}/schedule", Spec(
    "Schedule the campaign (`at`: ISO 8601 time with timezone) or send it now (no `at`)",
    auth="staff", body={"at": STRING}))
async def schedule_campaign(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    body = await json_body(request)
    at = body.get("at") if isinstance(body, dict) else None
    campaign = await operations.schedule(ctx.db, ctx.matrix, principal,
                                        slug, _campaign_id(request), at)
    return web.json_response(campaign_view(campaign))


@route("POST", "/shops/{slug}/campaigns/{campaign_id}/cancel", Spec(
    "Cancel a draft or scheduled campaign", auth="staff"))
async def cancel_campaign(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    campaign = await operations.cancel(ctx.db, principal,
                                      slug, _campaign_id(request))
    return web.json_response(campaign_view(campaign))


@route("POST", "/shops/{slug}/campaigns/{campaign_id}/retract", Spec(
    "Retract a sent campaign: its posts are redacted in every channel", auth="staff"))
async def retract_campaign(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    campaign = await operations.retract(ctx.db, ctx.matrix, principal,
                                       slug, _campaign_id(request))
    return web.json_response(campaign_view(campaign))


@route("POST", "/coupons/{coupon_id}/claim", Spec(
    "Claim a coupon for the acting user (the shop bot's `claim` command); the code comes by DM",
    auth="any"))
async def claim_coupon(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    principal = require_user(principal, "claims are made for a Matrix user")
    try:
        coupon_id = int(request.match_info["coupon_id"])
    except ValueError:
        raise InvalidInput("coupon_id", "must be a number") from None
    claimed = await coupons.claim_coupon(ctx.db, ctx.matrix, coupon_id, principal.user_id)
    # The code itself travels only by DM from the shop.
    return web.json_response({"coupon": claimed["coupon"], "title": claimed["title"],
                              "sent_by_dm": True})


@route("GET", "/me/coupons", Spec(
    "The acting user's coupon codes with their shop, title, expiry and redemption",
    auth="any"))
async def my_coupons(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    principal = require_user(principal, "coupons are for a Matrix user")
    codes = await rows.codes_of_user(ctx.db, principal.user_id)
    return web.json_response({"coupons": [
        {"code": c["code"], "coupon": c["coupon_id"], "shop": c["merchant_slug"],
         "title": c["title"], "expires_at": c["expires_at"], "claimed_at": c["claimed_at"],
         "redeemed_at": c["redeemed_at"]} for c in codes]})


@route("GET", "/shops/{slug}/coupons", Spec(
    "The shop's coupons, newest first: stock, codes claimed and redeemed, expiry",
    auth="staff"))
async def list_coupons(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    return web.json_response({"coupons": await coupons.shop_coupons(
        ctx.db, principal, slug)})


@route("POST", "/shops/{slug}/coupons/redeem", Spec(
    "Redeem a buyer's code once at the till; a used, expired or other shop's code is "
    "refused", auth="staff", body={"code": STRING}))
async def redeem_coupon(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    body = await json_body(request)
    result = await coupons.redeem(ctx.db, principal,
                                    slug,
                                    body.get("code") if isinstance(body, dict) else None)
    return web.json_response(result)


@route("GET", "/shops/{slug}/stats", Spec(
    "Followers over time; per campaign reach, views (approximate), reactions, claims, "
    "redemptions; shared product cards and how their live edits went", auth="staff"))
async def shop_stats(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    stats = await campaign_stats.stats(ctx.db, principal, slug)
    stats["cards"] = await card_edits.card_stats(ctx.db, slug)
    stats.update(await follow_reward.follow_stats(ctx.db, slug))
    stats["circle"] = await circle_rows.shop_stats(ctx.db, slug)
    return web.json_response(stats)


@route("PUT", "/shops/{slug}/quota", Spec(
    "Set the shop's posts per day and product cards shared per day (operator)",
    auth="operator", body={"posts_per_day": {"type": "integer"},
                           "shares_per_day": {"type": "integer"}}))
async def set_quota(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    merchants.require_operator(principal)
    merchant = await merchants.get_shop(ctx.db, slug)
    body = await json_body(request)
    if not isinstance(body, dict) or not {"posts_per_day", "shares_per_day"} & set(body):
        raise InvalidInput("posts_per_day", "send posts_per_day, shares_per_day or both, "
                                            "whole numbers from 0 to 1000")
    changes: dict[str, int] = {}
    for field, column in (("posts_per_day", "daily_post_quota"),
                          ("shares_per_day", "daily_share_quota")):
        if field not in body:
            continue
        value = body[field]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
            raise InvalidInput(field, "must be a whole number from 0 to 1000")
        changes[column] = value
    async with transaction(ctx.db) as conn:
        await store.update_merchant(conn, slug, **changes)
        await store.audit(conn, slug, principal.actor, "quota_set", **{
            field: body[field] for field in ("posts_per_day", "shares_per_day")
            if field in body})
    return web.json_response({
        "slug": slug,
        "posts_per_day": changes.get("daily_post_quota", merchant.daily_post_quota),
        "shares_per_day": changes.get("daily_share_quota", merchant.daily_share_quota)})
