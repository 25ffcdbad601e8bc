"""What a caller gets when a request fails: a JSON body {"errcode", "error"}, never a trace.

`ApiError` carries the HTTP status, a stable errcode and a sentence saying what to do;
components subclass it for their own errors. `error_middleware` turns it, the core's
`InvalidValue`, unknown paths and methods, oversized bodies and unexpected failures into
such answers, worded by the API (`ErrorAnswers`), on the paths the API serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from mercato.db import database_unavailable
from mercato.http_api.routes import Handler
from mercato.logging import get_logger
from mercato.values import InvalidValue
from mercato.web import json_error

log = get_logger(__name__)

NOT_JSON = "The request body is not valid JSON."


class ApiError(Exception):
    """A request the API refuses: answered with `status` and {"errcode", "error", **extra}."""

    status = 400
    errcode = "M_UNKNOWN"

    def __init__(self, message: str, *, errcode: str | None = None, status: int | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra
        if errcode:
            self.errcode = errcode
        if status:
            self.status = status

    def response(self) -> web.Response:
        return json_error(self.status, self.errcode, self.message, **self.extra)


def too_large(limit: int, hint: str) -> ApiError:
    """The answer to a body over `limit` bytes; `hint` says what to send instead."""
    return ApiError(f"Request body over {limit // 1024} KiB; {hint}", errcode="M_TOO_LARGE",
                    status=413)


@dataclass(frozen=True)
class ErrorAnswers:
    """How one API words the answers the middleware gives for it."""

    not_found: str  # formatted with {path}
    not_allowed: str  # formatted with {method} and {allowed}
    too_large_hint: str  # what to do about a body over the limit
    failed: str  # something went wrong on our side
    unavailable: str | None = None  # the database is not answering (None: as `failed`)


def error_middleware(serves: Callable[[web.Request], bool], answers: ErrorAnswers,
                     body_limit: Callable[[web.Request], int]) -> Middleware:
    """A middleware answering failures on the paths `serves` accepts as JSON errors."""

    @web.middleware
    async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not serves(request):
            return await handler(request)
        limit = body_limit(request)
        if request.content_length and request.content_length > limit:
            return too_large(limit, answers.too_large_hint).response()
        try:
            return await handler(request)
        except ApiError as e:
            return e.response()
        except InvalidValue as e:  # a value the core refused (mercato/values.py)
            return json_error(400, "MERCATO_INVALID", e.message)
        except json.JSONDecodeError:
            return json_error(400, "M_NOT_JSON", NOT_JSON)
        except web.HTTPNotFound:
            return json_error(404, "M_UNRECOGNIZED", answers.not_found.format(path=request.path))
        except web.HTTPMethodNotAllowed as e:
            allowed = ", ".join(sorted(e.allowed_methods))
            return json_error(405, "M_UNRECOGNIZED",
                              answers.not_allowed.format(method=request.method, allowed=allowed))
        except web.HTTPException:
            raise
        except Exception as e:
            return failure(request, e, answers)

    return api_errors


def failure(request: web.Request, error: Exception, answers: ErrorAnswers) -> web.Response:
    """500 for a bug, logged with its trace; 503 with Retry-After for a database away."""
    if answers.unavailable is not None and database_unavailable(error):
        log.warning("api.database_unavailable", path=request.path, method=request.method,
                    error=f"{type(error).__name__}: {error}")
        unavailable = json_error(503, "MERCATO_UNAVAILABLE", answers.unavailable)
        unavailable.headers["Retry-After"] = "5"
        return unavailable
    log.exception("api.failed", path=request.path, method=request.method)
    return json_error(500, "M_UNKNOWN", answers.failed)
