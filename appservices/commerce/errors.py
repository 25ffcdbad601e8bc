"""Errors users see: a stable code, an HTTP status, and a sentence a person understands."""

from __future__ import annotations

from mercato.values import InvalidValue


class CommerceError(Exception):
    status = 400
    errcode = "MERCATO_BAD_REQUEST"

    def __init__(self, message: str, *, errcode: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if errcode:
            self.errcode = errcode
        if status:
            self.status = status


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
