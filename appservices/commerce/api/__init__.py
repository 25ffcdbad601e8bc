"""The commerce HTTP API (`/api/v1`): one API for the shop bot, web pages and shop scripts.

It knows nothing of Matrix events; it calls the same domain functions the Matrix
handlers use, and hands them the appservice as their `ApiMatrix` port.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from appservices.commerce.api import campaigns as _campaign_routes  # noqa: F401 (registers)
from appservices.commerce.api import catalog_import as _import_routes  # noqa: F401 (registers)
from appservices.commerce.api import channels as _channel_routes  # noqa: F401 (registers)
from appservices.commerce.api import products as _product_routes
from appservices.commerce.api import routes
from appservices.commerce.api.openapi import openapi_document
from appservices.commerce.errors import CommerceError
from mercato.db import database_unavailable
from mercato.logging import get_logger
from mercato.values import InvalidValue
from mercato.web import json_error

log = get_logger(__name__)

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1024 * 1024
MAX_MEDIA_BYTES = 10 * 1024 * 1024
MAX_IMPORT_BYTES = 50 * 1024 * 1024
DATABASE_UNAVAILABLE = ("The shop database is not answering right now (it may be restarting); "
                        "nothing was changed. Try again in a few seconds.")


@web.middleware
async def api_errors(request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    if request.path.endswith("/media"):
        limit = MAX_MEDIA_BYTES
    elif request.path.endswith("/products/import"):
        limit = MAX_IMPORT_BYTES
    else:
        limit = MAX_BODY_BYTES
    if request.content_length and request.content_length > limit:
        return json_error(413, "M_TOO_LARGE",
                          f"Request body over {limit // 1024} KiB; send less.")
    try:
        return await handler(request)
    except CommerceError as e:
        return json_error(e.status, e.errcode, e.message)
    except InvalidValue as e:  # a value the core refused (mercato/values.py)
        return json_error(400, "MERCATO_INVALID", e.message)
    except json.JSONDecodeError:
        return json_error(400, "M_NOT_JSON", "The request body is not valid JSON.")
    except web.HTTPNotFound:
        return json_error(404, "M_UNRECOGNIZED", f"There is no {request.path} in the API; "
                                                 f"see {API_PREFIX}/openapi.json")
    except web.HTTPMethodNotAllowed as e:
        return json_error(405, "M_UNRECOGNIZED", f"{request.method} is not allowed here; "
                                                 f"use {', '.join(sorted(e.allowed_methods))}")
    except web.HTTPException:
        raise
    except Exception as e:
        if database_unavailable(e):
            log.warning("api.database_unavailable", path=request.path, method=request.method,
                        error=f"{type(e).__name__}: {e}")
            unavailable = json_error(503, "MERCATO_UNAVAILABLE", DATABASE_UNAVAILABLE)
            unavailable.headers["Retry-After"] = "5"
            return unavailable
        log.exception("api.failed", path=request.path, method=request.method)
        return json_error(500, "M_UNKNOWN", "Something went wrong on our side; nothing was "
                                            "changed. Try again, or tell the operator.")


def add_api_routes(app: web.Application, context: routes.ApiContext) -> None:
    app.middlewares.append(api_errors)
    app[routes.CONTEXT] = context
    for method, path, handler, _spec in routes.ROUTES:
        app.router.add_route(method, API_PREFIX + path, handler)
    document = openapi_document(API_PREFIX, routes.ROUTES)

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get(API_PREFIX + "/openapi.json", openapi)
    _product_routes.add_page_routes(app)


__all__ = ["API_PREFIX", "add_api_routes", "Any"]
