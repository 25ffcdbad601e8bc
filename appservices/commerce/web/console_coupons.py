"""The console's Coupons page: each coupon of the shop with its stock, the codes claimed and
redeemed and its expiry, and the till: staff type the code a buyer shows them and it is
redeemed, once. The list is `coupons.shop_coupons` (GET /api/v1/shops/<slug>/coupons) and
the till is `coupons.redeem` (POST …/coupons/redeem), with their permissions: every role
reads the list, owners, editors and support redeem. A refused code (used, expired, another
shop's) shows the API's sentence beside the form; with JavaScript only the till is swapped.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appservices.commerce.campaigns import coupons
from appservices.commerce.shops.roles import Action
from appservices.commerce.web.console import (
    ConsoleContext,
    Section,
    add_section,
    console_form,
    console_page,
    render_console,
    wants_fragment,
)
from appservices.commerce.web.console_forms import form_text, when
from mercato.http_api import ApiError
from mercato.logging import get_logger
from mercato.values import InvalidValue

log = get_logger(__name__)


async def _render(request: web.Request, cc: ConsoleContext, *, status: int = 200,
                  **till: Any) -> web.Response:
    till = {"redeemed": None, "error": "", "code": "", **till}
    if wants_fragment(request):
        return await render_console(request, cc, "console/coupons_till.html.j2",
                                    status=status, when=when, **till)
    listed = await coupons.shop_coupons(cc.api.db, cc.principal, cc.slug)
    return await render_console(request, cc, "console/coupons.html.j2", status=status,
                                coupons=listed, when=when, **till)


async def coupons_page(request: web.Request) -> web.Response:
    cc = await console_page(request, request.match_info["slug"], Action.READ_SHOP)
    return await _render(request, cc)


async def redeem(request: web.Request) -> web.Response:
    cc, form = await console_form(request, request.match_info["slug"], Action.REDEEM_COUPONS)
    code = form_text(form, "code")
    try:
        redeemed = await coupons.redeem(cc.api.db, cc.principal, cc.slug, code)
    except (ApiError, InvalidValue) as e:
        log.info("console.redeem_refused", shop=cc.slug)
        return await _render(request, cc, status=422, error=e.message, code=code)
    return await _render(request, cc, redeemed=redeemed)


def add_routes(app: web.Application) -> None:
    add_section(app, Section("coupons", "Coupons", "coupons",
                             (Action.REDEEM_COUPONS, Action.READ_STATS), 40))
    app.router.add_get("/console/{slug}/coupons", coupons_page)
    app.router.add_post("/console/{slug}/coupons/redeem", redeem)
