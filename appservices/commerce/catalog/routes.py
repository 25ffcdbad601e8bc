"""API routes for the product catalog, cards and price-drop alerts; the product image."""

from __future__ import annotations

from aiohttp import web

from appservices.commerce.auth import require_user
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.errors import InvalidInput, NotFound
from appservices.commerce.http import CONTEXT, STRING, caller, json_body, route, staff_caller
from appservices.commerce.shops.operations import role_of
from mercato.http_api import Spec

PRODUCT_BODY = {"sku": STRING, "title": STRING, "description": STRING, "price": STRING,
                "currency": STRING, "original_price": STRING, "image_mxc": STRING,
                "image_info": {"type": "object"}, "url": STRING, "stock": STRING,
                "tags": {"type": "array"}}


def _page(ctx, slug: str, sku: str) -> str:
    return products.product_page_url(ctx.matrix.public_url, slug, sku)


@route("GET", "/shops/{slug}/products", Spec(
    "The shop's catalog (public for approved shops); ?q= searches, ?after=<sku> pages",
    auth="none"))
async def list_products(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    slug = request.match_info["slug"]
    merchant = await catalog.get_shop(ctx.db, slug)
    if merchant.status != "approved" and not (principal is not None and (
            principal.is_operator or await role_of(ctx.db, principal, slug))):
        raise NotFound(f"There is no shop '{slug}'.")
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise InvalidInput("limit", "must be a whole number") from None
    if not 1 <= limit <= 500:
        raise InvalidInput("limit", "must be from 1 to 500")
    found = await product_rows.list_products(ctx.db, slug, query=request.query.get("q", ""),
                                             limit=limit, after_sku=request.query.get("after", ""))
    return web.json_response({"products": [catalog.product_view(p, _page(ctx, slug, p.sku))
                                           for p in found],
                              "total": await product_rows.count_products(ctx.db, slug)})


@route("POST", "/shops/{slug}/products", Spec("Add a product", auth="staff", success=201,
                                              body=PRODUCT_BODY))
async def create_product(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    product = await catalog.create_product(ctx.db, ctx.matrix, principal,
                                           slug, await json_body(request))
    return web.json_response(catalog.product_view(product, _page(ctx, slug, product.sku)),
                             status=201)


@route("GET", "/shops/{slug}/products/{sku}", Spec("One product", auth="none"))
async def get_product(request: web.Request) -> web.Response:
    ctx, _ = await caller(request)
    slug, sku = request.match_info["slug"], request.match_info["sku"]
    _, product = await catalog.public_product(ctx.db, slug, sku)
    return web.json_response(catalog.product_view(product, _page(ctx, slug, sku)))


@route("PATCH", "/shops/{slug}/products/{sku}", Spec(
    "Change a product; a new price or stock state edits the cards already posted",
    auth="staff", body=PRODUCT_BODY))
async def update_product(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    slug, sku = slug, request.match_info["sku"]
    product = await catalog.update_product(ctx.db, ctx.matrix, principal,
                                           slug, sku, await json_body(request))
    return web.json_response(catalog.product_view(product, _page(ctx, slug, sku)))


@route("DELETE", "/shops/{slug}/products/{sku}", Spec("Remove a product", auth="staff"))
async def delete_product(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    await catalog.delete_product(ctx.db, principal,
                                 slug, request.match_info["sku"])
    return web.json_response({})


@route("GET", "/shops/{slug}/products/{sku}/card", Spec(
    "The product card as m.room.message content, for a bot or client to send", auth="none"))
async def product_card(request: web.Request) -> web.Response:
    ctx, _ = await caller(request)
    slug, sku = request.match_info["slug"], request.match_info["sku"]
    merchant, product = await catalog.public_product(ctx.db, slug, sku)
    # A bot sends this card as it is: it passes the link rules as a shared card does.
    catalog.check_product_links(ctx.matrix, merchant, product)
    return web.json_response(catalog.card_for(ctx.matrix, merchant, product))


@route("POST", "/shops/{slug}/products/{sku}/share", Spec(
    "The shop posts the card into a room it is in; the card stays live", auth="staff",
    body={"room_id": STRING}))
async def share_product(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    body = await json_body(request)
    result = await catalog.share_card(ctx.db, ctx.matrix, principal,
                                      slug, request.match_info["sku"],
                                      body.get("room_id") if isinstance(body, dict) else None)
    return web.json_response(result)


@route("POST", "/shops/{slug}/products/{sku}/alert", Spec(
    "Subscribe the acting user to a price-drop alert (the shop bot's `alert` command)",
    auth="any"))
async def subscribe_alert(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    principal = require_user(principal, "alerts are for a Matrix user")
    product = await catalog.subscribe_alert(ctx.db, request.match_info["slug"],
                                            request.match_info["sku"], principal.user_id)
    return web.json_response({"sku": product.sku, "price": product.price,
                              "currency": product.currency})


@route("DELETE", "/shops/{slug}/products/{sku}/alert", Spec("Cancel a price-drop alert",
                                                            auth="any"))
async def cancel_alert(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    principal = require_user(principal, "alerts are for a Matrix user")
    if not await product_rows.remove_alert(ctx.db, request.match_info["slug"],
                                           request.match_info["sku"], principal.user_id):
        raise NotFound("You had no alert on this product.")
    return web.json_response({})


@route("GET", "/me/alerts", Spec("The acting user's price-drop alerts", auth="any"))
async def my_alerts(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    principal = require_user(principal, "alerts are for a Matrix user")
    return web.json_response({"alerts": await product_rows.alerts_of_user(ctx.db,
                                                                          principal.user_id)})


# -- the product's image (outside /api/v1: what the product page and URL previews fetch) -----
# The product page itself is the storefront's (web/storefront_product.py).


async def product_image(request: web.Request) -> web.StreamResponse:
    """The product's image from the media repository (which needs authentication)."""
    ctx = request.app[CONTEXT]
    slug, sku = request.match_info["slug"], request.match_info["sku"]
    try:
        merchant, product = await catalog.public_product(ctx.db, slug, sku)
    except NotFound:
        raise web.HTTPNotFound() from None
    if not product.image_mxc:
        raise web.HTTPNotFound()
    data = await ctx.matrix.download_media(merchant, product.image_mxc)
    return web.Response(body=data, content_type=product.image_info.get("mimetype",
                                                                       "image/jpeg"),
                        headers={"Cache-Control": "max-age=3600"})


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/p/{slug}/{sku}/image", product_image)

