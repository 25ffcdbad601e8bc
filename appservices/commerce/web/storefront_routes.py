"""The storefront's addresses: the shop, its products' pages and grid images, the cart,
checkout and the buyer's orders. The commerce service mounts them beside the sign-in routes."""

from __future__ import annotations

from aiohttp import web

from appservices.commerce.web import storefront, storefront_cart, storefront_orders
from appservices.commerce.web.storefront_product import product_page


def add_storefront_routes(app: web.Application) -> None:
    storefront.add_routes(app)
    app.router.add_get("/p/{slug}/{sku}", product_page)
    storefront_cart.add_routes(app)
    storefront_orders.add_routes(app)
