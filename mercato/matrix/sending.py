"""Send a message as an appservice user exactly once, across retries and restarts.

Synapse remembers an appservice's transaction IDs only in memory: after it restarts,
a resend with the same txnId posts a second copy. So a send here is never retried
blindly. Every message carries its txnId under MARKER; after a failure that may have
reached the room (a dropped connection, a 5xx), and whenever the inbox handles an
event again after a failed attempt, the room is searched for that marker first, and
the message is sent only if it is not there.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from mautrix.api import Method
from mautrix.appservice import IntentAPI
from mautrix.errors import MatrixConnectionError, MatrixRequestError
from mautrix.types import EventID, EventType, RoomID

from mercato.logging import get_logger
from mercato.matrix.paths import matrix_path

log = get_logger(__name__)

MARKER = "org.mercato.txn"
HISTORY_SCAN = 100  # the sender's own recent events searched for a marker
ATTEMPTS = 5

# True while the inbox handles an event whose earlier attempt failed part-way.
replaying: contextvars.ContextVar[bool] = contextvars.ContextVar("mercato_replaying",
                                                                default=False)


T = TypeVar("T")


def is_transient(error: BaseException) -> bool:
    """A failure after which the message may or may not be in the room."""
    if isinstance(error, MatrixRequestError):
        return error.http_status >= 500 or error.http_status == 429
    return isinstance(error, (MatrixConnectionError, aiohttp.ClientError,
                              asyncio.TimeoutError, ConnectionError))


async def retrying(call: Callable[[int], Awaitable[T]], *, what: str,
                   attempts: int = 4) -> T:
    """`call(attempt)` until it does not fail transiently (a busy homeserver answering 5xx
    or 429, a dropped connection), at most `attempts` times; attempt 0 is the first.

    Only for work that is safe to try again: a read, or a step that finds what an earlier
    attempt did (it can tell from `attempt` > 0 that one may have).
    """
    for attempt in range(attempts):
        try:
            return await call(attempt)
        except Exception as e:
            if not is_transient(e) or attempt == attempts - 1:
                raise
            log.warning("matrix.retry", what=what, attempt=attempt + 1,
                        error=f"{type(e).__name__}: {e}")
            await asyncio.sleep(0.25 * 2 ** attempt)
    raise AssertionError("unreachable")


async def find_marked(intent: IntentAPI, room_id: RoomID | str, txn_id: str) -> EventID | None:
    """The event this appservice user sent with `txn_id`, if it is among its recent ones."""
    response = await intent.api.request(
        Method.GET, matrix_path("client", "v3", "rooms", room_id, "messages"),
        query_params={"dir": "b", "limit": str(HISTORY_SCAN),
                      "filter": json.dumps({"senders": [intent.mxid]})})
    for event in response.get("chunk", []):
        content = event.get("content", {})
        if event.get("sender") == intent.mxid and isinstance(content, dict) and \
                content.get(MARKER) == txn_id:
            return EventID(event["event_id"])
    return None


async def send_once(intent: IntentAPI, room_id: RoomID | str, content: dict[str, Any],
                    txn_id: str, *, event_type: EventType = EventType.ROOM_MESSAGE,
                    attempts: int = ATTEMPTS, look_first: bool | None = None,
                    timestamp: int | None = None) -> EventID:
    """Send `content` to the room unless a message with this txnId is already there.

    `look_first` says an earlier attempt may have reached the room (default: the inbox
    is handling the event again); `attempts` counts tries within this call; `timestamp`
    (ms) dates a bridged message as its network did.
    """
    extra = {"timestamp": timestamp} if timestamp else {}
    marked = {**content, MARKER: txn_id}
    if look_first is None:
        look_first = replaying.get()
    for attempt in range(1, attempts + 1):
        try:
            if look_first:
                found = await find_marked(intent, room_id, txn_id)
                if found:
                    log.info("send.adopted", room_id=room_id, txn_id=txn_id, event_id=found)
                    return found
            # mautrix sends a plain dict as it is, but its EventContent union leaves dicts out.
            return await intent.send_message_event(RoomID(room_id), event_type,
                                                   marked,  # type: ignore[arg-type]
                                                   txn_id=txn_id, retry_count=0, **extra)
        except Exception as e:
            if not is_transient(e) or attempt == attempts:
                raise
            log.warning("send.retry", room_id=room_id, txn_id=txn_id, attempt=attempt,
                        error=f"{type(e).__name__}: {e}")
            look_first = True
            await asyncio.sleep(min(8.0, 0.5 * 2 ** attempt))
    raise AssertionError("unreachable")


# In a room's creation content: what the appservice created the room for.
CREATED_FOR = "org.mercato.created_for"


async def find_created(intent: IntentAPI, key: str, *, field: str = CREATED_FOR) -> str | None:
    """A room this appservice user is in whose creation content has `field` = `key`."""
    for room_id in reversed(await intent.get_joined_rooms()):  # newest last
        try:
            create = await intent.get_state_event(room_id, EventType.ROOM_CREATE)
        except MatrixRequestError:
            continue
        if create.serialize().get(field) == key:
            return str(room_id)
    return None


async def create_room_once(intent: IntentAPI, key: str, *, field: str = CREATED_FOR,
                           adopt: bool | None = None, **create: Any) -> str:
    """Create a room marked `field` = `key` in its creation content, unless an earlier
    attempt of this work did and stopped before recording it.

    Rooms, like messages, cannot be created idempotently: `adopt` (default: the inbox
    is handling the event again) first searches the rooms the user is in for the mark.
    `create` goes to `IntentAPI.create_room`.
    """
    if adopt is None:
        adopt = replaying.get()
    if adopt:
        found = await find_created(intent, key, field=field)
        if found:
            log.info("room.adopted", room_id=found, key=key)
            return found
    content = {**(create.pop("creation_content", None) or {}), field: key}
    return str(await intent.create_room(creation_content=content, **create))
