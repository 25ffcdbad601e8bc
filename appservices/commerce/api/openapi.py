"""The OpenAPI 3.1 document of the commerce API, generated from the declared routes."""

from __future__ import annotations

import re
from typing import Any

from mercato import __version__

ERROR = {"type": "object", "required": ["errcode", "error"],
         "properties": {"errcode": {"type": "string", "description": "stable error code"},
                        "error": {"type": "string", "description": "what happened and what "
                                                                    "to do next"}}}

AUTH_TEXT = {
    "none": "No authentication needed (a token, if sent, shows more).",
    "any": "Any valid token.",
    "operator": "The operator token.",
    "staff": "A shop API key, or the service token with X-Mercato-Acting-User naming a staff "
             "member; the role must allow the action. The operator token also works.",
}


def openapi_document(prefix: str, routes: list[tuple[str, str, Any, Any]]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler, spec in routes:
        parameters = [{"name": name, "in": "path", "required": True,
                       "schema": {"type": "string"}}
                      for name in re.findall(r"{(\w+)}", path)]
        parameters += [{"name": name, "in": "query", "required": False,
                        "description": description, "schema": {"type": "string"}}
                       for name, description in (spec.query or {}).items()]
        operation: dict[str, Any] = {
            "operationId": handler.__name__,
            "summary": spec.summary,
            "description": AUTH_TEXT[spec.auth],
            "parameters": parameters,
            "responses": {
                str(spec.success): {"description": "Success",
                                    "content": {"application/json": {"schema": {
                                        "type": "object"}}}},
                "default": {"description": "Error",
                            "content": {"application/json": {"schema": ERROR}}},
            },
        }
        if spec.auth != "none":
            operation["security"] = [{"bearer": []}]
        if spec.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "properties": spec.body}}}}
        paths.setdefault(prefix + path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mercato commerce API", "version": __version__,
                 "description": "Shops, staff, API keys and the audit log. Errors are JSON "
                                "objects with a stable `errcode` and a readable `error`."},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "A shop API key (mk_…), the operator token, or the shop bot's "
                           "service token with the X-Mercato-Acting-User header."}}},
    }
