"""The Circle's API routes, for the Matrix user the shop bot (or a signed-in web page) acts
for: opting in and out, recommending, letting friends in and out, the feed and the digest."""

from __future__ import annotations

import secrets
from typing import Any, Protocol, cast

from aiohttp import web

from appservices.commerce.auth import require_user
from appservices.commerce.circle import feed, operations
from appservices.commerce.circle.rooms import CircleRooms
from appservices.commerce.errors import Forbidden, InvalidInput
from appservices.commerce.http import STRING, ApiContext, caller, json_body, route
from appservices.commerce.shops.operations import Principal, validate_user_id
from appservices.commerce.shops.storage import now_ms
from mercato.http_api import Spec, query_number

WHY = "the Circle is a Matrix user's own"


class CircleMatrix(Protocol):
    circle: CircleRooms
    public_url: str


def _circle(ctx: ApiContext) -> CircleMatrix:
    return cast(CircleMatrix, ctx.matrix)


async def _user(request: web.Request) -> tuple[ApiContext, str]:
    ctx, principal = await caller(request)
    return ctx, require_user(principal, WHY).user_id


async def _body(request: web.Request) -> dict[str, Any]:
    body = await json_body(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise InvalidInput("body", "send a JSON object")
    return body


@route("GET", "/me/circle", Spec(
    "The acting user's Circle: opted in or not, their circle room and Space, friends in it, "
    "invited and knocking, and whether the daily digest is on", auth="any"))
async def get_circle(request: web.Request) -> web.Response:
    ctx, user_id = await _user(request)
    return web.json_response(await operations.circle_view(ctx.db, user_id))


@route("POST", "/me/circle", Spec(
    "Opt in (`circle on`): the acting user's circle room and Space; the friends the contacts "
    "bridge found who opted in too are invited to each other's circle rooms", auth="any"))
async def opt_in(request: web.Request) -> web.Response:
    ctx, user_id = await _user(request)
    rooms = _circle(ctx).circle
    return web.json_response(await operations.opt_in(ctx.db, rooms, rooms.friends, user_id))


@route("DELETE", "/me/circle", Spec(
    "Opt out (`circle off`): leave every friend's circle and the Space, friends leave the "
    "user's room; nothing is deleted", auth="any"))
async def opt_out(request: web.Request) -> web.Response:
    ctx, user_id = await _user(request)
    return web.json_response(await operations.opt_out(ctx.db, _circle(ctx).circle, user_id))


@route("POST", "/me/circle/recommendations", Spec(
    "Recommend a product ({shop, sku}) or a channel post ({post: its matrix.to link}) in the "
    "acting user's circle room, with an optional `note` of their own (link rules apply); "
    "`request_id` makes a retry post nothing twice. 429 past "
    "commerce.circle.recommendations_per_day", auth="any", success=201,
    body={"shop": STRING, "sku": STRING, "post": STRING, "note": STRING,
          "request_id": STRING}))
async def recommend(request: web.Request) -> web.Response:
    ctx, user_id = await _user(request)
    body = await _body(request)
    request_id = body.get("request_id") or secrets.token_hex(8)
    if not isinstance(request_id, str) or len(request_id) > 64:
        raise InvalidInput("request_id", "send text of at most 64 characters")
    txn_id = f"mercato.circle.api.{user_id}.{request_id}"
    rooms = _circle(ctx).circle
    per_day = ctx.config.circle.recommendations_per_day
    if body.get("post"):
        room_id, event_id = operations.parse_post_link(body["post"])
        rec = await operations.recommend_post(ctx.db, rooms, user_id, room_id, event_id,
                                              body.get("note"), txn_id=txn_id,
                                              per_day=per_day, now_ms=now_ms())
    else:
        shop, sku = body.get("shop"), body.get("sku")
        if not isinstance(shop, str) or not isinstance(sku, str) or not shop or not sku:
            raise InvalidInput("sku", 'send {"shop": "<shop>", "sku": "<SKU>"} or '
                                      '{"post": "<link to a channel post>"}')
        rec = await operations.recommend_product(ctx.db, rooms, user_id, shop, sku,
                                                 body.get("note"), txn_id=txn_id,
                                                 per_day=per_day, now_ms=now_ms())
    return web.json_response(operations.recommendation_view(rec), status=201)


@route("POST", "/me/circle/friends", Spec(
    "Let someone into the acting user's circle room (`circle approve`): someone who knocked, "
    "or anyone named; refused for someone the owner banned", auth="any",
    body={"user_id": STRING}))
async def approve(request: web.Request) -> web.Response:
    ctx, user_id = await _user(request)
    friend = validate_user_id((await _body(request)).get("user_id"), "user_id")
    return web.json_response(await operations.approve(ctx.db, _circle(ctx).circle, user_id,
                                                      friend))


@route("DELETE", "/me/circle/friends/{user_id}", Spec(
    "Take someone out of the acting user's circle room (`circle remove`)", auth="any"))
async def remove(request: web.Request) -> web.Response:
    ctx, user_id = await _user(request)
    friend = validate_user_id(request.match_info["user_id"], "user_id")
    return web.json_response(await operations.remove(ctx.db, _circle(ctx).circle, user_id,
                                                     friend))


@route("GET", "/me/circle/feed", Spec(
    "The acting user's Circle as one feed, newest first: friends' recommendations and posts "
    "of followed channels, each with shop, price, recommender and links", auth="any",
    query={"since": "only items after this time (ms since 1970)",
           "limit": "at most this many (1-200, default 50)"}))
async def get_feed(request: web.Request) -> web.Response:
    ctx, user_id = await _user(request)
    items = await feed.feed(ctx.db, user_id,
                            since_ms=query_number(request, "since", default=0, low=0),
                            limit=query_number(request, "limit", default=50, low=1, high=200),
                            public_url=_circle(ctx).public_url)
    return web.json_response({"items": [item.as_json() for item in items]})


@route("PUT", "/me/circle/digest", Spec(
    "Turn the daily digest on (with the `room_id` of the shop bot's DM it is sent in) or off",
    auth="any", body={"enabled": {"type": "boolean"}, "room_id": STRING}))
async def set_digest(request: web.Request) -> web.Response:
    ctx, user_id = await _user(request)
    body = await _body(request)
    enabled, room_id = body.get("enabled"), body.get("room_id")
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled", "send true or false")
    if enabled and (not isinstance(room_id, str) or not room_id.startswith("!")):
        raise InvalidInput("room_id", "send the room ID of the DM the digest goes to")
    await operations.set_digest(ctx.db, user_id, room_id if enabled else None)
    return web.json_response(await operations.circle_view(ctx.db, user_id))


@route("POST", "/me/circle/digest/next", Spec(
    "The acting user's digest if one is due (at most one a day, only with something new): "
    "{due, room_id, text}; it counts as sent. `at` is the shop bot's clock (ms)", auth="any",
    query={"at": "the time it is for the caller (ms since 1970); default now"}))
async def next_digest(request: web.Request) -> web.Response:
    ctx, user_id = await _user(request)
    at = query_number(request, "at", default=now_ms(), low=0)
    due = await feed.next_digest(ctx.db, user_id, at, public_url=_circle(ctx).public_url)
    if due is None:
        return web.json_response({"due": False})
    return web.json_response({"due": True, "room_id": due[0], "text": due[1]})


def _require_shop_bot(ctx: ApiContext, principal: Principal | None) -> None:
    acting = require_user(principal, "only the shop bot lists digest subscribers").user_id
    shopbot = getattr(ctx.matrix.config, "shopbot", None)
    if shopbot is None or acting != ctx.matrix.config.user_id(shopbot.localpart):
        raise Forbidden("Only the shop bot lists who gets a digest.")


@route("GET", "/circle/digest-subscribers", Spec(
    "Who gets the daily digest (for the shop bot, acting as itself)", auth="any"))
async def digest_subscribers(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    _require_shop_bot(ctx, principal)
    return web.json_response({"users": await operations.digest_subscribers(ctx.db)})
