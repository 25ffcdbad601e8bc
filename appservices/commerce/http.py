"""What every commerce route shares: its context (database, settings, the Matrix port), who
is calling, its JSON body, and the one route table the features declare their routes in.

The route framework itself is the core's (`mercato.http_api`); `api.py` mounts the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from appservices.commerce.auth import principal_from_request, require_principal
from appservices.commerce.campaigns.operations import BroadcastMatrix
from appservices.commerce.catalog.operations import CatalogMatrix
from appservices.commerce.config import CommerceConfig
from appservices.commerce.orders.operations import OrdersMatrix
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, ShopMatrix
from mercato.config import MercatoConfig
from mercato.db import Database
from mercato.http_api import RouteTable, read_json


class ApiMatrix(ShopMatrix, OrdersMatrix, CatalogMatrix, BroadcastMatrix, Protocol):
    """What the handlers need from Matrix: the ports of shops, catalog, campaigns and orders, and
    for product pages the network's config and the media repository."""

    config: MercatoConfig

    async def download_media(self, merchant: store.Merchant, mxc: str) -> bytes: ...

    async def thumbnail_media(self, merchant: store.Merchant, mxc: str, width: int,
                              height: int) -> bytes: ...


@dataclass(frozen=True)
class ApiContext:
    db: Database
    config: CommerceConfig
    matrix: ApiMatrix


CONTEXT = web.AppKey("commerce_api", ApiContext)
ROUTES = RouteTable()
route = ROUTES.route

# The middleware refuses a larger Content-Length; this holds for chunked bodies too.
MAX_JSON_BYTES = 1024 * 1024
TOO_LARGE_HINT = "send less."


async def caller(request: web.Request) -> tuple[ApiContext, Principal | None]:
    """The API's context and who is calling (None for an anonymous caller)."""
    ctx = request.app[CONTEXT]
    return ctx, await principal_from_request(request, ctx.db, ctx.config)


async def signed_in_caller(request: web.Request) -> tuple[ApiContext, Principal]:
    """The API's context and who is calling; 401 for an anonymous caller."""
    ctx, principal = await caller(request)
    return ctx, require_principal(principal)


async def staff_caller(request: web.Request) -> tuple[ApiContext, Principal, str]:
    """For a route of one shop (`/shops/{slug}/…`): the context, who is calling (401 when
    nobody signed the request) and the shop's slug; what they may do there, the operation
    checks."""
    ctx, principal = await signed_in_caller(request)
    return ctx, principal, request.match_info["slug"]


async def json_body(request: web.Request) -> Any:
    """The request's JSON body, any JSON value; the routes check its shape."""
    return await read_json(request, limit=MAX_JSON_BYTES, hint=TOO_LARGE_HINT)


STRING = {"type": "string"}
