"""One way to build an HTTP API on aiohttp, shared by every component that serves one.

A component declares its routes in a `RouteTable` with a `Spec` each, reads bodies and
query numbers with `request`, raises `ApiError` (or a subclass of its own) for what
the caller must change, mounts the routes behind `error_middleware`, and may serve
the table as an OpenAPI document. Nothing here knows what any API is about.
"""

from mercato.http_api.auth import bearer_token, same_secret
from mercato.http_api.errors import ApiError, ErrorAnswers, error_middleware, too_large
from mercato.http_api.openapi import ApiDescription, add_openapi_route, openapi_document
from mercato.http_api.request import json_object, query_number, read_json
from mercato.http_api.routes import Handler, Route, RouteTable, Spec

__all__ = [
    "ApiDescription", "ApiError", "ErrorAnswers", "Handler", "Route", "RouteTable", "Spec",
    "add_openapi_route", "bearer_token", "error_middleware", "json_object", "openapi_document",
    "query_number", "read_json", "same_secret", "too_large",
]
