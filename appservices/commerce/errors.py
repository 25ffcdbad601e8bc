"""Errors users see: a stable code, an HTTP status, and a sentence a person understands."""

from __future__ import annotations

from mercato.http_api import ApiError
from mercato.values import InvalidValue


class CommerceError(ApiError):
    """What shops, staff and followers are refused, over the API and in Matrix alike."""

    status = 400
    errcode = "MERCATO_BAD_REQUEST"


class InvalidInput(InvalidValue, CommerceError):
    """A field the caller must change: the core's `InvalidValue`, answered with 400."""

    errcode = "MERCATO_INVALID"


class NotFound(CommerceError):
    status = 404
    errcode = "M_NOT_FOUND"


class Forbidden(CommerceError):
    status = 403
    errcode = "M_FORBIDDEN"


class Conflict(CommerceError):
    status = 409
    errcode = "MERCATO_CONFLICT"
