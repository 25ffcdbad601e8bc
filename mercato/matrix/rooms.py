"""Rooms named by alias, resolved on input to the room ID that Mercato answers and stores.

An alias can be moved to another room or removed, and sending or editing needs the
room itself: a card stored under `#shop_demo:example.org` could never be edited. So
wherever an API field or a command takes a room, an alias is resolved once, through
the homeserver's directory (which asks the alias's own server over federation), and
only the room ID is kept.
"""

from __future__ import annotations

import re

from mautrix.api import HTTPAPI, Method
from mautrix.errors import MatrixConnectionError, MatrixRequestError, MNotFound
from mautrix.types import RoomID

from mercato.matrix.paths import matrix_path

# `#localpart:server`; the directory refuses anything else.
ALIAS = re.compile(r"^#[^:\s]+:[^\s]+$")


class UnknownAlias(LookupError):
    """No room has this alias (or it is no alias at all)."""

    def __init__(self, alias: str) -> None:
        super().__init__(f"no room has the alias {alias}")
        self.alias = alias


class AliasLookupFailed(Exception):
    """The directory did not answer; the alias may well exist."""

    def __init__(self, alias: str, reason: str) -> None:
        super().__init__(f"the homeserver could not look up the alias {alias} ({reason}); "
                         "try again in a moment")
        self.alias = alias


def is_alias(room: str) -> bool:
    return room.startswith("#")


async def resolve_room(api: HTTPAPI, room: str) -> RoomID:
    """The room ID of `room`: a room ID as it is, an alias through the room directory."""
    if not is_alias(room):
        return RoomID(room)
    if not ALIAS.match(room):
        raise UnknownAlias(room)
    try:
        found = await api.request(Method.GET,
                                  matrix_path("client", "v3", "directory", "room", room))
    except MNotFound:
        raise UnknownAlias(room) from None
    except MatrixRequestError as e:
        if e.http_status == 400:  # a server name the directory cannot parse
            raise UnknownAlias(room) from None
        raise AliasLookupFailed(room, e.message or str(e)) from None
    except MatrixConnectionError as e:
        raise AliasLookupFailed(room, str(e)) from None
    room_id = found.get("room_id") if isinstance(found, dict) else None
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise AliasLookupFailed(room, "the directory answered without a room ID")
    return RoomID(room_id)
