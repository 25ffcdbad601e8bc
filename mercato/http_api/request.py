"""Reading what a caller sent: a JSON body under a size cap, and whole numbers in the query.

The body is read in chunks and refused as soon as it passes the cap, so a client that
sends no Content-Length (a chunked upload) cannot make the server hold more than that.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web

from mercato.http_api.errors import NOT_JSON, ApiError, too_large
from mercato.values import InvalidValue

CHUNK_BYTES = 64 * 1024


async def read_json(request: web.Request, *, limit: int, hint: str) -> Any:
    """The body as any JSON value ({} when there is none), at most `limit` bytes."""
    if not request.can_read_body:
        return {}
    raw = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        raw += chunk
        if len(raw) > limit:
            raise too_large(limit, hint)
    if not raw:
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(NOT_JSON, errcode="M_NOT_JSON") from None


async def json_object(request: web.Request, *, limit: int, hint: str) -> dict[str, Any]:
    """The body as a JSON object ({} when there is none), at most `limit` bytes."""
    body = await read_json(request, limit=limit, hint=hint)
    if not isinstance(body, dict):
        raise ApiError("The request body must be a JSON object.", errcode="M_BAD_JSON")
    return body


_Default = TypeVar("_Default", int, None)


def query_number(request: web.Request, name: str, *, default: _Default, low: int,
                 high: int | None = None) -> int | _Default:
    """The whole number `?name=` from `low` to `high`, or `default` when it is not sent."""
    if name not in request.query:
        return default
    try:
        value = int(request.query[name])
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        limits = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise InvalidValue(name, f"must be a whole number {limits}")
    return value
