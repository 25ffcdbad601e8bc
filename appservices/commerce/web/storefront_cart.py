"""The storefront's cart and checkout, for the signed-in buyer: add from the product page,
change or remove lines, choose delivery and payment, apply a coupon and place the order.

Every change is a POST form with the CSRF token, answered with a redirect to the page to
show (so reloading never sends it twice). The pages call orders' own operations as the
signed-in buyer — the same `add_to_cart`, `checkout_quote` and `place_order` the chat and
the API use — so a refusal is the API's sentence, shown on the form, and nothing is half
done. The order card goes to the buyer's DM with the shop, as it does for any order.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from appservices.commerce.http import CONTEXT
from appservices.commerce.orders import carts, operations
from appservices.commerce.orders import settings as order_settings
from appservices.commerce.shops import storage as store
from appservices.commerce.web import page, sessions
from appservices.commerce.web.storefront import open_shop_or_404
from appservices.commerce.web.storefront_form_errors import FormError, form_error
from appservices.commerce.web.storefront_orders import order_path
from appservices.commerce.web.storefront_product import (
    product_path,
    public_product_or_404,
    render_product,
)
from appservices.commerce.web.storefront_rules import (
    DELIVERY_TEXT,
    checkout_body,
    form_quantity,
    payment_choices,
)
from mercato.http_api import ApiError
from mercato.logging import get_logger
from mercato.values import InvalidValue

log = get_logger(__name__)

Refusal = (ApiError, InvalidValue)  # what orders' operations refuse with, and why


def _shop_path(merchant: store.Merchant, rest: str = "") -> str:
    return f"/s/{quote(merchant.slug)}{rest}"


def _text(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


async def _buyer_for(request: web.Request, back_to: str) -> str:
    """The signed-in buyer; otherwise off to sign in, coming back to `back_to`."""
    user = await sessions.signed_in_user(request)
    if user is None:
        raise web.HTTPSeeOther(sessions.signin_url(back_to))
    return user


# -- the cart -------------------------------------------------------------------------------

async def add_to_cart(request: web.Request) -> web.StreamResponse:
    form = await sessions.check_csrf(request)
    ctx = request.app[CONTEXT]
    merchant = await open_shop_or_404(ctx, request.match_info["slug"])
    sku = _text(form, "sku")
    # The SKU is looked up in this shop only: another shop's product is not found here.
    merchant, product = await public_product_or_404(request, merchant.slug, sku)
    buyer = await _buyer_for(request, product_path(merchant.slug, sku))
    quantity = form_quantity(form.get("quantity"))
    try:
        await carts.add_to_cart(ctx.db, buyer, merchant.slug, sku, quantity)
    except Refusal as e:
        return await render_product(request, merchant, product, error=e.message,
                                    quantity=quantity, status=_status(e))
    log.info("storefront.added_to_cart", shop=merchant.slug, sku=sku)
    raise web.HTTPSeeOther(_shop_path(merchant, "/cart"))


async def cart_page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    merchant = await open_shop_or_404(ctx, request.match_info["slug"])
    buyer = await sessions.require_user(request)
    return await _render_cart(request, merchant, buyer)


async def _render_cart(request: web.Request, merchant: store.Merchant, buyer: str, *,
                       error: str = "", status: int = 200) -> web.Response:
    ctx = request.app[CONTEXT]
    cart = await carts.cart_view(ctx.db, buyer, merchant.slug)
    return await page.render(request, "storefront/cart.html.j2", status=status,
                             embeddable=True, shop=merchant, cart=cart, error=error,
                             closed=carts.not_taking_orders(merchant),
                             cart_count=sum(i["quantity"] for i in cart["items"]))


async def change_cart(request: web.Request) -> web.StreamResponse:
    """A line's new quantity (`quantity`), or its removal (`remove`)."""
    form = await sessions.check_csrf(request)
    ctx = request.app[CONTEXT]
    merchant = await open_shop_or_404(ctx, request.match_info["slug"])
    buyer = await sessions.require_user(request)
    sku = _text(form, "sku")
    try:
        if "remove" in form:
            await carts.remove_from_cart(ctx.db, buyer, merchant.slug, sku)
        else:
            await carts.set_cart_item(ctx.db, buyer, merchant.slug, sku,
                                      form_quantity(form.get("quantity")))
    except Refusal as e:
        return await _render_cart(request, merchant, buyer, error=e.message,
                                  status=_status(e))
    raise web.HTTPSeeOther(_shop_path(merchant, "/cart"))


# -- checkout -------------------------------------------------------------------------------

async def checkout_page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    merchant = await open_shop_or_404(ctx, request.match_info["slug"])
    buyer = await sessions.require_user(request)
    return await _render_checkout(request, merchant, buyer, {})


async def checkout(request: web.Request) -> web.StreamResponse:
    """`action=apply` shows the summary with the coupon; `action=place` places the order."""
    form = await sessions.check_csrf(request)
    ctx = request.app[CONTEXT]
    merchant = await open_shop_or_404(ctx, request.match_info["slug"])
    buyer = await sessions.require_user(request)
    if _text(form, "action") != "place":
        return await _render_checkout(request, merchant, buyer, form)
    try:
        order = await operations.place_order(ctx.db, ctx.matrix, buyer,
                                             checkout_body(merchant.slug, form))
    except Refusal as e:
        return await _render_checkout(request, merchant, buyer, form, refusal=e,
                                      status=_status(e))
    log.info("storefront.order_placed", shop=merchant.slug, order=order.id)
    raise web.HTTPSeeOther(f"{order_path(merchant.slug, order.id)}?placed=1")


async def _render_checkout(request: web.Request, merchant: store.Merchant, buyer: str,
                           form: Any, *, refusal: Exception | None = None,
                           status: int = 200) -> web.Response:
    """The checkout form with what the buyer chose so far and, next to its field, why it
    was refused; a coupon the shop refuses is said, and the summary shown without it."""
    ctx = request.app[CONTEXT]
    coupon = _text(form, "coupon")
    try:
        options = await order_settings.checkout_options(ctx.db, merchant.slug)
        try:
            summary = await carts.checkout_quote(ctx.db, buyer, merchant.slug, coupon or None)
        except InvalidValue as e:
            if not coupon or e.field != "coupon":
                raise
            refusal = refusal or e
            summary = await carts.checkout_quote(ctx.db, buyer, merchant.slug, None)
    except Refusal as e:
        # The shop closed or the cart is empty: the cart page says so, with what is in it.
        return await _render_cart(request, merchant, buyer, error=e.message,
                                  status=max(status, _status(e)))
    settings = await order_settings.settings_of(ctx.db, merchant.slug)
    total = f"{summary['total']} {summary['currency']}"
    chosen = {name: _text(form, name) for name in ("delivery", "payment", "address", "phone")}
    chosen["delivery"] = chosen["delivery"] or options["delivery"][0]
    deliveries = {k: DELIVERY_TEXT.get(k, k) for k in options["delivery"]}
    payments = payment_choices(options["payment_methods"], settings["payment_methods"], total)
    problem = form_error(refusal, getattr(refusal, "message", str(refusal)), chosen, payments,
                         deliveries) if refusal else FormError("", "")
    return await page.render(
        request, "storefront/checkout.html.j2", status=status, embeddable=True,
        cache_control="no-store", shop=merchant, summary=summary, problem=problem,
        coupon=coupon, chosen=chosen, deliveries=list(deliveries.items()), payments=payments,
        cart_count=sum(i["quantity"] for i in summary["items"]))


def _status(error: Exception) -> int:
    return error.status if isinstance(error, ApiError) else 400


def add_routes(app: web.Application) -> None:
    app.router.add_post("/s/{slug}/cart/add", add_to_cart)
    app.router.add_get("/s/{slug}/cart", cart_page)
    app.router.add_post("/s/{slug}/cart", change_cart)
    app.router.add_get("/s/{slug}/checkout", checkout_page)
    app.router.add_post("/s/{slug}/checkout", checkout)
