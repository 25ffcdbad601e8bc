"""The commerce HTTP API (`/api/v1`): one API for the shop bot, web pages and shop scripts.

It knows nothing of Matrix events; it calls the same domain functions the Matrix
handlers use, and hands them the appservice as their `ApiMatrix` port. The route
framework, error answers and OpenAPI generation are the core's (`mercato.http_api`);
what is said here is how this API words them.
"""

from __future__ import annotations

from aiohttp import web

from appservices.commerce import http

# isort: off
# Each feature's routes register in the one route table when imported, in the order the
# OpenAPI document lists them: shops first.
from appservices.commerce.shops import routes as _shop_routes  # noqa: F401
from appservices.commerce.campaigns import routes as _campaign_routes  # noqa: F401
from appservices.commerce.catalog import import_routes as _import_routes  # noqa: F401
from appservices.commerce.orders import routes as _order_routes  # noqa: F401
from appservices.commerce.shops import channel_routes as _channel_routes  # noqa: F401
from appservices.commerce.shops import menu_routes as _menu_routes  # noqa: F401
from appservices.commerce.catalog import routes as _product_routes
from appservices.commerce.webhooks import routes as _webhook_routes  # noqa: F401
from appservices.commerce.web import api_routes as _web_login_routes  # noqa: F401
from appservices.commerce.circle import routes as _circle_routes  # noqa: F401
# isort: on
from mercato.http_api import ApiDescription, ErrorAnswers, error_middleware, openapi_document
from mercato.http_api.openapi import add_openapi_route

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1024 * 1024
MAX_MEDIA_BYTES = 10 * 1024 * 1024
MAX_IMPORT_BYTES = 50 * 1024 * 1024
ANSWERS = ErrorAnswers(
    not_found=f"There is no {{path}} in the API; see {API_PREFIX}/openapi.json",
    not_allowed="{method} is not allowed here; use {allowed}",
    too_large_hint=http.TOO_LARGE_HINT,
    failed="Something went wrong on our side; nothing was changed. Try again, or tell the "
           "operator.",
    unavailable="The shop database is not answering right now (it may be restarting); "
                "nothing was changed. Try again in a few seconds.")
DESCRIPTION = ApiDescription(
    title="Mercato commerce API",
    description="Shops, staff, API keys and the audit log. Errors are JSON objects with a "
                "stable `errcode` and a readable `error`.",
    auth_text={
        "none": "No authentication needed (a token, if sent, shows more).",
        "any": "Any valid token.",
        "operator": "The operator token.",
        "staff": "A shop API key, or the service token with X-Mercato-Acting-User naming a "
                 "staff member; the role must allow the action. The operator token also works.",
    },
    bearer_text="A shop API key (mk_…), the operator token, or the shop bot's service token "
                "with the X-Mercato-Acting-User header.")


def in_api(request: web.Request) -> bool:
    return request.path.startswith(API_PREFIX)


def body_limit(request: web.Request) -> int:
    """Images and catalog files may be larger than the JSON every other route takes."""
    if request.path.endswith("/media"):
        return MAX_MEDIA_BYTES
    if request.path.endswith("/products/import"):
        return MAX_IMPORT_BYTES
    return MAX_BODY_BYTES


api_errors = error_middleware(in_api, ANSWERS, body_limit)


def add_api_routes(app: web.Application, context: http.ApiContext) -> None:
    app.middlewares.append(api_errors)
    app[http.CONTEXT] = context
    http.ROUTES.mount(app, API_PREFIX)
    add_openapi_route(app, API_PREFIX + "/openapi.json",
                      openapi_document(http.ROUTES, API_PREFIX, DESCRIPTION))
    _product_routes.add_page_routes(app)


__all__ = ["API_PREFIX", "add_api_routes", "api_errors"]
