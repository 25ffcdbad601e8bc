"""An API's OpenAPI 3.1 document, generated from its route table so it cannot drift.

Each API names itself, says what each of its caller kinds (`Spec.auth`) means and
what its bearer tokens are (`ApiDescription`); every error is the same
{"errcode", "error"} object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mercato import __version__
from mercato.http_api.routes import Route

ERROR = {"type": "object", "required": ["errcode", "error"],
         "properties": {"errcode": {"type": "string", "description": "stable error code"},
                        "error": {"type": "string", "description": "what happened and what "
                                                                    "to do next"}}}
PUBLIC = "none"  # the `Spec.auth` of a route anyone may call


@dataclass(frozen=True)
class ApiDescription:
    title: str
    description: str
    auth_text: Mapping[str, str]  # Spec.auth → who may call, in words
    bearer_text: str  # what a bearer token of this API is


def operation(path: str, route: Route, about: ApiDescription) -> dict[str, Any]:
    """The OpenAPI operation object of one route."""
    spec = route.spec
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"{(\w+)}", path)]
    parameters += [{"name": name, "in": "query", "required": False,
                    "description": description, "schema": {"type": "string"}}
                   for name, description in (spec.query or {}).items()]
    found: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": spec.summary,
        "description": about.auth_text[spec.auth],
        "parameters": parameters,
        "responses": {
            str(spec.success): {"description": "Success",
                                "content": {"application/json": {"schema": {
                                    "type": "object"}}}},
            "default": {"description": "Error",
                        "content": {"application/json": {"schema": ERROR}}},
        },
    }
    if spec.auth != PUBLIC:
        found["security"] = [{"bearer": []}]
    if spec.body is not None:
        found["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "properties": spec.body}}}}
    return found


def openapi_document(routes: Iterable[Route], prefix: str,
                     about: ApiDescription) -> dict[str, Any]:
    """The whole document: every route under `prefix`, in the order declared."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(prefix + route.path, {})[route.method.lower()] = operation(
            route.path, route, about)
    return {
        "openapi": "3.1.0",
        "info": {"title": about.title, "version": __version__, "description": about.description},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer", "description": about.bearer_text}}},
    }


def add_openapi_route(app: web.Application, path: str, document: dict[str, Any]) -> None:
    """Serve `document` at `path` to anyone."""
    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get(path, openapi)
