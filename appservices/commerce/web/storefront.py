"""The storefront's browsing pages: `/s/<slug>`, a shop with its description, tags, search
and a paged grid of its products, and the products' grid images, which are the
homeserver's thumbnails passed through Mercato (the page's CSP allows images from this
site only, and the media repository needs authentication).

Everything here works without JavaScript: search and tags are links and a GET form, pages
are links. Cart and checkout are `storefront_cart`.
"""

from __future__ import annotations

import time

from aiohttp import web

from appservices.commerce.catalog import operations as catalog
from appservices.commerce.errors import NotFound
from appservices.commerce.http import CONTEXT, ApiContext
from appservices.commerce.orders import storage as order_rows
from appservices.commerce.shops import follow_reward, follow_storage
from appservices.commerce.shops import storage as store
from appservices.commerce.web import page, sessions
from appservices.commerce.web import storefront_storage as listing_rows
from appservices.commerce.web.errors import WebError
from appservices.commerce.web.storefront_rules import (
    THUMBNAIL,
    can_order,
    pager,
    parse_listing,
    percent_off,
    stock_label,
)
from mercato.logging import get_logger

log = get_logger(__name__)


def channel_link(ctx: ApiContext, slug: str) -> str:
    """matrix.to for the shop's channel: any Matrix client opens (and joins) it from there."""
    return (f"https://matrix.to/#/#{ctx.config.user_prefix}{slug}:"
            f"{ctx.matrix.config.server_name}")


def shop_user_link(merchant: store.Merchant) -> str:
    return f"https://matrix.to/#/{merchant.mxid}"


async def open_shop_or_404(ctx: ApiContext, slug: str) -> store.Merchant:
    """An approved shop, or the page that says there is none (as the product page does)."""
    try:
        merchant = await catalog.get_shop(ctx.db, slug)
    except NotFound as e:
        raise WebError(404, "No such shop", e.message) from None
    if merchant.status != "approved":
        raise WebError(404, "No such shop", f"There is no shop '{slug}'.")
    return merchant


async def cart_count(request: web.Request, slug: str) -> int:
    """How many things the signed-in buyer has in their cart at the shop (the header's
    Cart link shows it); 0 when signed out."""
    buyer = await sessions.signed_in_user(request)
    if buyer is None:
        return 0
    return sum(quantity for _, quantity in
               await order_rows.cart_items(request.app[CONTEXT].db, buyer, slug))


async def follow_offer(ctx: ApiContext, slug: str) -> dict[str, object] | None:
    """The shop's follow reward while it is on, in stock and not expired: its title, what
    its code takes off, and how many are left."""
    reward = await follow_storage.reward_of(ctx.db, slug)
    now = int(time.time() * 1000)
    title = follow_reward.offer_text(reward, now)
    if reward is None or not title:
        return None
    return {"title": title, "gives": follow_reward.discount_text(reward.percent_off,
                                                                 reward.amount_off),
            "left": max(reward.stock - reward.given, 0)}


async def shop_page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    merchant = await open_shop_or_404(ctx, request.match_info["slug"])
    listing = parse_listing(request.query)
    found = await listing_rows.shop_page(ctx.db, merchant.slug, listing)
    tags = await listing_rows.shop_tags(ctx.db, merchant.slug)
    cards = [{"p": p, "stock": stock_label(p), "orderable": can_order(p),
              "percent_off": percent_off(p)} for p in found.products]
    return await page.render(
        request, "storefront/shop.html.j2", embeddable=True,
        shop=merchant, listing=listing, products=cards, matching=found.matching,
        pager=pager(listing, found.matching), tags=tags,
        follow_href=channel_link(ctx, merchant.slug),
        follow_offer=await follow_offer(ctx, merchant.slug),
        cart_count=await cart_count(request, merchant.slug),
        server_name=ctx.matrix.config.server_name)


def image_type(data: bytes) -> str:
    """The image's type from its first bytes (the homeserver picks a thumbnail's format)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


async def product_thumbnail(request: web.Request) -> web.Response:
    """The product's image as the homeserver's thumbnail for the grid."""
    ctx = request.app[CONTEXT]
    slug, sku = request.match_info["slug"], request.match_info["sku"]
    try:
        merchant, product = await catalog.public_product(ctx.db, slug, sku)
    except NotFound:
        raise web.HTTPNotFound() from None
    if not product.image_mxc:
        raise web.HTTPNotFound()
    data = await ctx.matrix.thumbnail_media(merchant, product.image_mxc, *THUMBNAIL)
    return web.Response(body=data, content_type=image_type(data),
                        headers={"Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/s/{slug}", shop_page)
    app.router.add_get("/p/{slug}/{sku}/thumbnail", product_thumbnail)
