"""The console's Orders page: the shop's orders as a board by status (placed, confirmed,
paid, shipped, delivered; cancelled, declined and refunded folded away), each card with
the moves the orders' table allows it, shipping with carrier, tracking number and link,
and a printable packing slip.

Everything goes through orders' own operations with the API's permission
(`manage_orders`: owners and support): the board reads `views.shop_orders` (GET
/api/v1/shops/<slug>/orders), a move is `operations.change_status` (POST
…/orders/{id}/status), so the buyer's card is edited and noticed exactly as for a move
made in the staff room or by the shop's back-end, and a refusal is the same sentence.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from appservices.commerce.orders import operations, views
from appservices.commerce.orders.rules import Order, money
from appservices.commerce.shops.roles import Action
from appservices.commerce.web.console import (
    ConsoleContext,
    Section,
    add_section,
    console_form,
    console_page,
    render_console,
)
from appservices.commerce.web.console_forms import (
    BOARD,
    FOLDED,
    next_moves,
    status_body,
    when,
)
from mercato.http_api import ApiError
from mercato.logging import get_logger
from mercato.values import InvalidValue

log = get_logger(__name__)

PER_COLUMN = 50


async def _column(cc: ConsoleContext, status: str) -> dict[str, Any]:
    found = await views.shop_orders(cc.api.db, cc.principal, cc.slug, status,
                                    views.Page(limit=PER_COLUMN))
    return {"status": status, "orders": found.orders, "more": found.next is not None}


async def _render_board(request: web.Request, cc: ConsoleContext, *, status: int = 200,
                        error: str = "", error_order: str = "") -> web.Response:
    board = [await _column(cc, s.value) for s in BOARD]
    folded = [await _column(cc, s.value) for s in FOLDED]
    return await render_console(
        request, cc, "console/orders.html.j2", status=status, board=board, folded=folded,
        folded_count=sum(len(c["orders"]) for c in folded), moves=next_moves, when=when,
        money=money, error=error, error_order=error_order, slip_url=lambda o: slip_url(cc, o))


def slip_url(cc: ConsoleContext, order: Order) -> str:
    return cc.url(f"orders/{quote(order.id)}/slip")


async def orders_page(request: web.Request) -> web.Response:
    cc = await console_page(request, request.match_info["slug"], Action.MANAGE_ORDERS)
    return await _render_board(request, cc)


async def move_order(request: web.Request) -> web.StreamResponse:
    """One move of one order; back to the board at that order's card."""
    cc, form = await console_form(request, request.match_info["slug"], Action.MANAGE_ORDERS)
    order_id = request.match_info["order_id"]
    try:
        moved = await operations.change_status(cc.api.db, cc.api.matrix, cc.principal, cc.slug,
                                               order_id, status_body(form))
    except (ApiError, InvalidValue) as e:
        log.info("console.order_move_refused", shop=cc.slug, order=order_id)
        return await _render_board(request, cc, status=422, error=e.message,
                                   error_order=order_id)
    raise web.HTTPSeeOther(cc.url(f"orders#order-{moved.id}"))


async def packing_slip(request: web.Request) -> web.Response:
    cc = await console_page(request, request.match_info["slug"], Action.MANAGE_ORDERS)
    try:
        order = await views.shop_order(cc.api.db, cc.principal, cc.slug,
                                       request.match_info["order_id"])
    except (ApiError, InvalidValue) as e:
        return await render_console(request, cc, "console/slip_missing.html.j2", status=404,
                                    error=e.message)
    return await render_console(request, cc, "console/slip.html.j2", order=order, when=when,
                                money=money)


def add_routes(app: web.Application) -> None:
    add_section(app, Section("orders", "Orders", "orders", (Action.MANAGE_ORDERS,), 50))
    app.router.add_get("/console/{slug}/orders", orders_page)
    app.router.add_post("/console/{slug}/orders/{order_id}/status", move_order)
    app.router.add_get("/console/{slug}/orders/{order_id}/slip", packing_slip)
