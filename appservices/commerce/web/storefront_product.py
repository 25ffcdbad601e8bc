"""The product page, `/p/<slug>/<sku>`: what URL previews and buyers' browsers open from a
card, a campaign or the storefront's grid. It carries the Open Graph tags previews read,
and a form (quantity, "Add to cart") that posts to the shop's cart with the CSRF token;
a buyer who is not signed in is sent to sign in and comes back here. A signed-in buyer also
has "Recommend", which posts to their Circle (web/circle_page.py)."""

from __future__ import annotations

import secrets
from dataclasses import replace
from urllib.parse import quote

from aiohttp import web

from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import products
from appservices.commerce.catalog.products import Product
from appservices.commerce.errors import NotFound
from appservices.commerce.http import CONTEXT
from appservices.commerce.shops import storage as store
from appservices.commerce.web import page
from appservices.commerce.web.errors import WebError
from appservices.commerce.web.storefront import cart_count, channel_link
from appservices.commerce.web.storefront_rules import can_order, percent_off, stock_label


def product_path(slug: str, sku: str) -> str:
    return f"/p/{quote(slug)}/{quote(sku)}"


async def render_product(request: web.Request, merchant: store.Merchant, product: Product, *,
                         error: str = "", quantity: object = 1, recommend_error: str = "",
                         status: int = 200) -> web.Response:
    """The product page; `error` is why an "Add to cart" was refused, `recommend_error` why
    a recommendation was, each shown on its form."""
    ctx = request.app[CONTEXT]
    page_url = products.product_page_url(ctx.matrix.public_url, merchant.slug, product.sku)
    # A URL stored before the link rules covered the catalog is not offered to buyers.
    product = replace(product, url=catalog.shown_url(ctx.matrix, merchant, product))
    return await page.render(
        request, "storefront/product.html.j2", status=status, embeddable=True,
        cache_control="private, no-cache" if status == 200 else "no-store",
        shop=merchant, p=product, page_url=page_url, stock=stock_label(product),
        stock_text=products.STOCK_TEXT[product.stock], orderable=can_order(product),
        off=percent_off(product), error=error, quantity=quantity,
        image_url=f"{page_url}/image" if product.image_mxc else "",
        image_path=f"{product_path(merchant.slug, product.sku)}/image",
        channel_link=channel_link(ctx, merchant.slug),
        server_name=ctx.matrix.config.server_name, recommend_error=recommend_error,
        recommended=request.query.get("recommended") == "1",
        recommend_request_id=secrets.token_hex(8),
        cart_count=await cart_count(request, merchant.slug))


async def public_product_or_404(request: web.Request, slug: str,
                                sku: str) -> tuple[store.Merchant, Product]:
    try:
        return await catalog.public_product(request.app[CONTEXT].db, slug, sku)
    except NotFound as e:
        raise WebError(404, "Not found", e.message) from None


async def product_page(request: web.Request) -> web.Response:
    merchant, product = await public_product_or_404(
        request, request.match_info["slug"], request.match_info["sku"])
    return await render_product(request, merchant, product)
