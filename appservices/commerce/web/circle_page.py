"""The Circle on the web, `/circle`: a signed-in buyer's friends' recommendations and the
posts of the channels they follow as one feed, newest first (circle/feed.py, one query a
page, an "Older" link carrying the cursor), with what they can do with each item: order
(the storefront's product page), claim a coupon post, recommend it on to their own friends
with a line of their own, or open it in their Matrix client.

Every action is a POST form with the CSRF token, answered with a redirect (so a reload sends
nothing twice), and calls the same operation as the API: `circle on`, the recommendation
(its daily limit and link rules included, a refusal shown as the API's sentence) and the
coupon claim. The product page's "Recommend" button posts here too. Nothing needs
JavaScript; everything a shop or a user wrote is escaped by the templates.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, Protocol, cast
from urllib.parse import quote

from aiohttp import web

from appservices.commerce.campaigns import coupons
from appservices.commerce.campaigns import storage as campaign_rows
from appservices.commerce.circle import feed, operations
from appservices.commerce.circle import storage as circle_rows
from appservices.commerce.circle.rooms import CircleRooms
from appservices.commerce.errors import InvalidInput
from appservices.commerce.http import CONTEXT, ApiContext
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.storage import now_ms
from appservices.commerce.web import page, sessions
from appservices.commerce.web.storefront import image_type
from appservices.commerce.web.storefront_product import (
    product_path,
    public_product_or_404,
    render_product,
)
from appservices.commerce.web.storefront_rules import THUMBNAIL
from mercato.http_api import ApiError
from mercato.logging import get_logger
from mercato.values import InvalidValue

log = get_logger(__name__)

PATH = "/circle"
PAGE_SIZE = 20
Refusal = (ApiError, InvalidValue)  # what the Circle's and coupons' operations refuse with
DONE = {  # what a redirect back to the feed says happened (never text from the request)
    "on": "Your Circle is on. Friends who opted in too are invited to each other's Circles.",
    "recommended": "Recommended to your Circle: your friends see it in their feed and "
                   "their Matrix client.",
    "claimed": "Claimed: the shop sends your code to your chat with them.",
}


class CircleMatrix(Protocol):
    circle: CircleRooms
    public_url: str


def _circle(ctx: ApiContext) -> CircleMatrix:
    return cast(CircleMatrix, ctx.matrix)


def _text(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def when(at_ms: int, now: int) -> str:
    """How long ago, the way a feed says it: "just now", "5 min ago", "3 h ago", "4 Dec"."""
    seconds = max(0, (now - at_ms) // 1000)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{datetime.fromtimestamp(at_ms / 1000, UTC):%-d %b}"


def iso_time(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="seconds")


# -- the page ----------------------------------------------------------------------------------

async def circle_page(request: web.Request) -> web.Response:
    user = await sessions.require_user(request)
    return await _render(request, user)


async def _render(request: web.Request, user: str, *, error: str = "",
                  status: int = 200) -> web.Response:
    ctx = request.app[CONTEXT]
    circle = await circle_rows.get_circle(ctx.db, user)
    if circle is None or not circle.opted_in:
        return await page.render(request, "circle/intro.html.j2", status=status,
                                 cache_control="no-store", error=error)
    older_than = feed.decode_cursor(request.query.get("older", ""))
    found = await feed.feed_page(ctx.db, user, older_than=older_than, limit=PAGE_SIZE,
                                 public_url=_circle(ctx).public_url)
    done = DONE.get(request.query.get("done", ""), "")
    return await page.render(
        request, "circle/feed.html.j2", status=status, cache_control="no-store",
        entries=found.entries, error=error, done=done, first_page=older_than is None,
        older_href=f"{PATH}?older={feed.encode_cursor(found.older)}" if found.older else "",
        request_id=secrets.token_hex(8), now=now_ms(), when=when, iso_time=iso_time,
        product_path=product_path, shop_path=shop_path)


# -- actions -------------------------------------------------------------------------------------

async def turn_on(request: web.Request) -> web.StreamResponse:
    """`circle on`, as the API's POST /me/circle does it."""
    await sessions.check_csrf(request)
    user = await sessions.require_user(request)
    ctx = request.app[CONTEXT]
    rooms = _circle(ctx).circle
    try:
        await operations.opt_in(ctx.db, rooms, rooms.friends, user)
    except Refusal as e:
        return await _render(request, user, error=e.message, status=_status(e))
    raise web.HTTPSeeOther(f"{PATH}?done=on")


async def _recommend(ctx: ApiContext, user: str, form: Any) -> None:
    """The API's recommendation, for the form's product (shop, sku) or post (its link)."""
    request_id = _text(form, "request_id") or secrets.token_hex(8)
    if len(request_id) > 64:
        raise InvalidInput("request_id", "reload the page and send the form again")
    txn_id = f"mercato.circle.web.{user}.{request_id}"
    rooms = _circle(ctx).circle
    per_day = ctx.config.circle.recommendations_per_day
    note = form.get("note", "")
    if _text(form, "post"):
        room_id, event_id = operations.parse_post_link(_text(form, "post"))
        await operations.recommend_post(ctx.db, rooms, user, room_id, event_id, note,
                                        txn_id=txn_id, per_day=per_day, now_ms=now_ms())
        return
    shop, sku = _text(form, "shop"), _text(form, "sku")
    if not shop or not sku:
        raise InvalidInput("sku", "choose a product or a post to recommend")
    await operations.recommend_product(ctx.db, rooms, user, shop, sku, note, txn_id=txn_id,
                                       per_day=per_day, now_ms=now_ms())


async def recommend_from_feed(request: web.Request) -> web.StreamResponse:
    form = await sessions.check_csrf(request)
    user = await sessions.require_user(request)
    try:
        await _recommend(request.app[CONTEXT], user, form)
    except Refusal as e:
        return await _render(request, user, error=e.message, status=_status(e))
    log.info("circle_page.recommended", user_id=user)
    raise web.HTTPSeeOther(f"{PATH}?done=recommended")


async def recommend_product(request: web.Request) -> web.StreamResponse:
    """The product page's "Recommend" button: back to the product page, which says so."""
    form = await sessions.check_csrf(request)
    slug, sku = request.match_info["slug"], request.match_info["sku"]
    merchant, product = await public_product_or_404(request, slug, sku)
    back = product_path(merchant.slug, product.sku)
    user = await sessions.signed_in_user(request)
    if user is None:
        raise web.HTTPSeeOther(sessions.signin_url(back))
    fields = {"shop": merchant.slug, "sku": product.sku, "note": form.get("note", ""),
              "request_id": form.get("request_id", "")}
    try:
        await _recommend(request.app[CONTEXT], user, fields)
    except Refusal as e:
        return await render_product(request, merchant, product, recommend_error=e.message,
                                    status=_status(e))
    raise web.HTTPSeeOther(f"{back}?recommended=1#recommend")


async def claim(request: web.Request) -> web.StreamResponse:
    """A coupon post's claim, as the API's POST /coupons/{id}/claim: the code comes by DM."""
    form = await sessions.check_csrf(request)
    user = await sessions.require_user(request)
    ctx = request.app[CONTEXT]
    try:
        coupon_id = int(_text(form, "coupon_id"))
    except ValueError:
        return await _render(request, user, error="That coupon is not one of your Circle's "
                             "posts; reload the page and claim it again.", status=400)
    try:
        await coupons.claim_coupon(ctx.db, ctx.matrix, coupon_id, user)
    except Refusal as e:
        return await _render(request, user, error=e.message, status=_status(e))
    raise web.HTTPSeeOther(f"{PATH}?done=claimed")


async def post_image(request: web.Request) -> web.Response:
    """A channel post's picture, as the homeserver's thumbnail (posts are public)."""
    ctx = request.app[CONTEXT]
    try:
        campaign = await campaign_rows.get_campaign(ctx.db, int(request.match_info["id"]))
    except ValueError:
        raise web.HTTPNotFound() from None
    if campaign is None or not campaign.image_mxc or campaign.state not in ("sending", "sent"):
        raise web.HTTPNotFound()
    merchant = await store.get_merchant(ctx.db, store.MerchantSlug(campaign.merchant_slug))
    if merchant is None or merchant.status != "approved":
        raise web.HTTPNotFound()
    data = await ctx.matrix.thumbnail_media(merchant, campaign.image_mxc, *THUMBNAIL)
    return web.Response(body=data, content_type=image_type(data),
                        headers={"Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})


def _status(error: Exception) -> int:
    return error.status if isinstance(error, ApiError) else 400


def shop_path(slug: str) -> str:
    return f"/s/{quote(slug)}"


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, circle_page)
    app.router.add_post(f"{PATH}/on", turn_on)
    app.router.add_post(f"{PATH}/recommend", recommend_from_feed)
    app.router.add_post(f"{PATH}/claim", claim)
    app.router.add_get(f"{PATH}/posts/{{id}}/image", post_image)
    app.router.add_post("/p/{slug}/{sku}/recommend", recommend_product)

