"""A room given as input (an API field): its room ID, or an error that says what to send.

Every field that takes a room accepts a room ID or an alias; the alias is resolved
through the homeserver (mercato/matrix/rooms.py) before anything is written, and the
room ID is what is answered and stored.
"""

from __future__ import annotations

from typing import Any, Protocol

from appservices.commerce.errors import CommerceError, InvalidInput
from mercato.matrix.rooms import AliasLookupFailed, UnknownAlias


class RoomResolver(Protocol):
    async def resolve_room(self, room: str) -> str: ...


class UnknownRoomAlias(InvalidInput):
    errcode = "MERCATO_UNKNOWN_ALIAS"


async def room_id_of(matrix: RoomResolver, field: str, value: Any, *, what: str) -> str:
    """The room ID `value` names; `what` says what the field must be when it is neither."""
    if not isinstance(value, str) or not value.startswith(("!", "#")):
        raise InvalidInput(field, f"must be {what}")
    try:
        return await matrix.resolve_room(value)
    except UnknownAlias as e:
        raise UnknownRoomAlias(field, str(e)) from None
    except AliasLookupFailed as e:
        raise CommerceError(f"{field}: {e}", errcode="MERCATO_ALIAS_LOOKUP_FAILED",
                            status=502) from None
