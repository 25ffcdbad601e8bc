"""API routes for orders: the shop's orders and settings, the buyer's cart and orders."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appservices.commerce.auth import require_principal, require_user
from appservices.commerce.errors import InvalidInput
from appservices.commerce.http import STRING, caller, json_body, route, staff_caller
from appservices.commerce.orders import carts, views
from appservices.commerce.orders import operations as orders
from appservices.commerce.orders import settings as order_settings
from mercato.http_api import Spec

INTEGER = {"type": "integer"}
OBJECT = {"type": "object"}
STATUS_BODY = {"status": STRING, "carrier": STRING, "tracking": STRING, "tracking_url": STRING,
               "reason": STRING}
ORDER_BODY = {"shop": STRING, "items": {"type": "array"}, "from_cart": {"type": "boolean"},
              "delivery": OBJECT, "payment": STRING, "coupon": STRING}


def _number(request: web.Request, name: str, default: int | None, low: int,
            high: int) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(name, "must be a whole number") from None
    if not low <= value <= high:
        raise InvalidInput(name, f"must be from {low} to {high}")
    return value


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status)


# -- the shop's side -------------------------------------------------------------------------

@route("GET", "/shops/{slug}/orders/settings", Spec(
    "The payment methods and delivery kinds the shop offers at checkout (orders permission)",
    auth="staff"))
async def get_order_settings(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    return _json(await order_settings.get_settings(ctx.db, principal,
                                           slug))


@route("PUT", "/shops/{slug}/orders/settings", Spec(
    "Set the payment methods (on_delivery, pickup, bank_transfer with details, payment_link "
    "with a template holding {order_id}) and delivery kinds (shipping, pickup, none); owner",
    auth="staff", body={"payment_methods": OBJECT, "delivery": {"type": "array"}}))
async def put_order_settings(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    return _json(await order_settings.put_settings(
        ctx.db, ctx.matrix.mercato_hosts, principal,
        slug, await json_body(request)))


@route("GET", "/shops/{slug}/orders", Spec(
    "The shop's orders with their items and history, newest first (orders permission); "
    "?status= filters, ?limit= (1-200), ?cursor= the `next` of the page before goes on from "
    "there (?before=<created_at> starts older than a time)", auth="staff"))
async def list_shop_orders(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    page = await views.shop_orders(ctx.db, principal,
                                   slug, request.query.get("status"),
                                   _page(request))
    return _json({**_page_answer(page),
                  "next_before": page.orders[-1].created_at if page.orders else None})


def _page(request: web.Request) -> views.Page:
    return views.Page(limit=_number(request, "limit", 50, 1, 200) or 50,
                      cursor=request.query.get("cursor") or None,
                      before=_number(request, "before", None, 0, 2**62))


def _page_answer(page: views.OrderPage) -> dict[str, Any]:
    """A page of orders (without address and phone) and the cursor of the next page."""
    return {"orders": [views.order_view(o, personal=False) for o in page.orders],
            "next": page.next}


@route("GET", "/shops/{slug}/orders/{order_id}", Spec(
    "One order with its items, history, address and phone (orders permission)", auth="staff"))
async def get_shop_order(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    order = await views.shop_order(ctx.db, principal,
                                    slug, request.match_info["order_id"])
    return _json(views.order_view(order))


@route("POST", "/shops/{slug}/orders/{order_id}/status", Spec(
    "Move the order on: confirmed, declined (with reason), paid, shipped (carrier, tracking, "
    "tracking_url), delivered, cancelled, refunded; the buyer's card is edited and they are "
    "told", auth="staff", body=STATUS_BODY))
async def move_order(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    order = await orders.change_status(ctx.db, ctx.matrix, require_principal(principal),
                                       request.match_info["slug"],
                                       request.match_info["order_id"], await json_body(request))
    return _json(views.order_view(order))


# -- the buyer's side --------------------------------------------------------------------------

def _buyer(principal: Any) -> str:
    return require_user(principal, "carts and orders are a Matrix user's").user_id


@route("GET", "/shops/{slug}/checkout", Spec(
    "What a buyer may choose at the shop's checkout: delivery kinds and payment methods",
    auth="none"))
async def checkout_options(request: web.Request) -> web.Response:
    ctx, _ = await caller(request)
    return _json(await order_settings.checkout_options(ctx.db, request.match_info["slug"]))


@route("GET", "/me/cart/{slug}", Spec("The acting user's cart at a shop", auth="any"))
async def get_cart(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    return _json(await carts.cart_view(ctx.db, _buyer(principal), request.match_info["slug"]))


@route("GET", "/me/carts", Spec(
    "Every cart of the acting user that holds something, at any shop: each with shop_name, "
    "shop_status and a note when the shop cannot take orders now", auth="any"))
async def list_carts(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    return _json({"carts": await carts.buyer_carts(ctx.db, _buyer(principal))})


@route("POST", "/me/cart/{slug}/items", Spec(
    "Add a product to the acting user's cart: the quantity (1-99, default 1) is added to what "
    "is there in one step, as the 🛒 reaction does; the cart", auth="any",
    body={"sku": STRING, "quantity": INTEGER}))
async def add_cart_item(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("sku"), str) or not body["sku"]:
        raise InvalidInput("sku", 'send {"sku": "<the product\'s SKU>", "quantity": 1}')
    return _json(await carts.add_to_cart(ctx.db, _buyer(principal), request.match_info["slug"],
                                         body["sku"], body.get("quantity", 1)))


@route("PUT", "/me/cart/{slug}/items/{sku}", Spec(
    "Put a product in the acting user's cart with this quantity (1-99)", auth="any",
    body={"quantity": INTEGER}))
async def put_cart_item(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    body = await json_body(request)
    quantity = body.get("quantity", 1) if isinstance(body, dict) else None
    return _json(await carts.set_cart_item(ctx.db, _buyer(principal), request.match_info["slug"],
                                            request.match_info["sku"], quantity))


@route("DELETE", "/me/cart/{slug}/items/{sku}", Spec(
    "Take a product out of the acting user's cart", auth="any"))
async def delete_cart_item(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    return _json(await carts.remove_from_cart(ctx.db, _buyer(principal),
                                               request.match_info["slug"],
                                               request.match_info["sku"]))


@route("POST", "/me/orders", Spec(
    "Place an order as the acting user: shop, items (or from_cart), delivery {kind, address, "
    "phone}, payment, coupon; the order card arrives in the buyer's DM with the shop",
    auth="any", success=201, body=ORDER_BODY))
async def place_order(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    order = await orders.place_order(ctx.db, ctx.matrix, _buyer(principal),
                                     await json_body(request))
    return _json(views.order_view(order), status=201)


@route("GET", "/me/orders", Spec(
    "The acting user's orders with their items and history, newest first; ?limit= (1-200), "
    "?cursor= the `next` of the page before goes on from there", auth="any"))
async def list_my_orders(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    return _json(_page_answer(await views.buyer_orders(ctx.db, _buyer(principal),
                                                       _page(request))))


@route("GET", "/me/orders/{order_id}", Spec("One of the acting user's orders", auth="any"))
async def get_my_order(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    order = await views.buyer_order(ctx.db, _buyer(principal), request.match_info["order_id"])
    return _json(views.order_view(order))


@route("POST", "/me/orders/{order_id}/cancel", Spec(
    "Cancel the acting user's order before it ships", auth="any", body={"reason": STRING}))
async def cancel_my_order(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    body = await json_body(request) if request.can_read_body else {}
    reason = body.get("reason") if isinstance(body, dict) else None
    order = await orders.cancel_order(ctx.db, ctx.matrix, _buyer(principal),
                                      request.match_info["order_id"], reason)
    return _json(views.order_view(order))


@route("POST", "/me/orders/{order_id}/forget", Spec(
    "Erase the address and phone of the acting user's delivered or cancelled order (its "
    "totals stay for the shop's books)", auth="any"))
async def forget_my_order(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    order = await orders.forget_personal_data(ctx.db, ctx.matrix, _buyer(principal),
                                              request.match_info["order_id"])
    return _json(views.order_view(order))
