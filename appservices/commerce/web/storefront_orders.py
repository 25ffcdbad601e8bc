"""The buyer's orders on the web: `/orders`, their orders at every shop, newest first, a
page at a time (orders' `buyer_orders` and its cursor), and `/s/<slug>/orders/<id>`, one
order with its whole history, tracking, how to pay, and what the buyer may still do:
**Cancel** (until it ships) and **Forget my address** (once it is done).

Both actions are POST forms with the CSRF token calling orders' own `cancel_order` and
`forget_personal_data` as the signed-in buyer, the operations the API and the chat use, so
the card in the buyer's DM is edited as it is for any change, and a refusal is the rule's
sentence. An order of someone else answers 404, as one that does not exist.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from appservices.commerce.errors import NotFound
from appservices.commerce.http import CONTEXT
from appservices.commerce.orders import cards, operations, payments, views
from appservices.commerce.orders import settings as order_settings
from appservices.commerce.orders.rules import Order
from appservices.commerce.shops import storage as store
from appservices.commerce.web import page, sessions
from appservices.commerce.web.errors import WebError
from appservices.commerce.web.storefront import cart_count, open_shop_or_404, shop_user_link
from appservices.commerce.web.storefront_order_rules import (
    ORDERS_PER_PAGE,
    can_forget,
    cancel_refusal,
    history_rows,
    orders_link,
    status_text,
    when,
)
from mercato.http_api import ApiError
from mercato.logging import get_logger
from mercato.values import InvalidValue

log = get_logger(__name__)


def order_path(slug: str, order_id: str) -> str:
    return f"/s/{quote(slug)}/orders/{quote(order_id)}"


async def _shop_names(db: Any, orders: list[Order]) -> dict[str, str]:
    """Each shop's name, read once per shop on the page."""
    names: dict[str, str] = {}
    for slug in {o.merchant_slug for o in orders}:
        merchant = await store.get_merchant(db, store.MerchantSlug(slug))
        names[slug] = merchant.name if merchant else slug
    return names


async def my_orders(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    buyer = await sessions.require_user(request)
    cursor = request.query.get("after") or None
    try:
        found = await views.buyer_orders(ctx.db, buyer, views.Page(ORDERS_PER_PAGE, cursor))
    except InvalidValue:  # an edited or stale link: the newest orders instead
        raise web.HTTPSeeOther("/orders") from None
    names = await _shop_names(ctx.db, found.orders)
    rows = [{"id": o.id, "shop": names[o.merchant_slug], "href": order_path(o.merchant_slug, o.id),
             "status": status_text(o.status), "status_class": o.status,
             "placed": when(o.created_at), "order": views.order_view(o, personal=False)}
            for o in found.orders]
    return await page.render(request, "storefront/orders.html.j2", embeddable=True,
                             cache_control="no-store", orders=rows, first_page=cursor is None,
                             next_href=orders_link(found.next) if found.next else None)


async def _own_order(request: web.Request) -> tuple[store.Merchant, str, Order]:
    """The shop, the signed-in buyer, and their order there; 404 for anyone else's."""
    ctx = request.app[CONTEXT]
    merchant = await open_shop_or_404(ctx, request.match_info["slug"])
    buyer = await sessions.require_user(request)
    order_id = request.match_info["order_id"]
    try:
        order = await views.buyer_order(ctx.db, buyer, order_id)
    except (NotFound, InvalidValue):
        raise WebError(404, "No such order", f"You have no order {order_id} at "
                                             f"{merchant.name}.") from None
    if order.merchant_slug != merchant.slug:
        raise WebError(404, "No such order", f"You have no order {order.id} at {merchant.name}.")
    return merchant, buyer, order


async def order_page(request: web.Request) -> web.Response:
    merchant, buyer, order = await _own_order(request)
    return await _render_order(request, merchant, buyer, order)


async def _render_order(request: web.Request, merchant: store.Merchant, buyer: str,
                        order: Order, *, error: str = "", status: int = 200) -> web.Response:
    ctx = request.app[CONTEXT]
    settings = await order_settings.settings_of(ctx.db, merchant.slug)
    method = payments.REGISTRY[order.payment_method]
    face = cards.ShopFace(merchant.slug, merchant.name, merchant.mxid, merchant.verified)
    return await page.render(
        request, "storefront/order.html.j2", status=status, embeddable=True,
        cache_control="no-store", shop=merchant, order=views.order_view(order),
        status_text=status_text(order.status), history=history_rows(order, buyer, merchant.name),
        how_to_pay=cards.instructions(order, face, settings["payment_methods"].get(
            order.payment_method, {})),
        payment_label=method.label,
        cancel_refusal=cancel_refusal(order, method.paid_before_shipping),
        can_forget=can_forget(order), error=error, just_placed="placed" in request.query,
        changed=request.query.get("done", ""), shop_link=shop_user_link(merchant),
        cart_count=await cart_count(request, merchant.slug))


async def cancel(request: web.Request) -> web.StreamResponse:
    form = await sessions.check_csrf(request)
    merchant, buyer, order = await _own_order(request)
    reason = form.get("reason", "")
    try:
        order = await operations.cancel_order(request.app[CONTEXT].db, request.app[CONTEXT].matrix,
                                               buyer, order.id, reason or None)
    except (ApiError, InvalidValue) as e:
        return await _render_order(request, merchant, buyer, order, error=e.message,
                                   status=e.status if isinstance(e, ApiError) else 400)
    log.info("storefront.order_cancelled", shop=merchant.slug, order=order.id)
    raise web.HTTPSeeOther(f"{order_path(merchant.slug, order.id)}?done=cancelled")


async def forget(request: web.Request) -> web.StreamResponse:
    await sessions.check_csrf(request)
    merchant, buyer, order = await _own_order(request)
    try:
        order = await operations.forget_personal_data(
            request.app[CONTEXT].db, request.app[CONTEXT].matrix, buyer, order.id)
    except ApiError as e:
        return await _render_order(request, merchant, buyer, order, error=e.message,
                                   status=e.status)
    raise web.HTTPSeeOther(f"{order_path(merchant.slug, order.id)}?done=forgotten")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/orders", my_orders)
    app.router.add_get("/s/{slug}/orders/{order_id}", order_page)
    app.router.add_post("/s/{slug}/orders/{order_id}/cancel", cancel)
    app.router.add_post("/s/{slug}/orders/{order_id}/forget", forget)
