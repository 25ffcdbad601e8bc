"""The console's Customers page: the shop's customer-service conversations that reached its
staff room, latest first, each with its last message, when it was written and by whom, and
a matrix.to link into the staff room's thread, where staff answer as the shop.

The conversations are `support/storage`'s (the desk records which message was relayed
where, not what it said); the last message's text is read from the buyer's DM as the shop
when the page is shown, so the commerce database keeps no copy of what buyers write. It
is shown as text: whatever a buyer typed, HTML included, is escaped like every value.
Staff who answer buyers (`answer_buyers`: owners and support) see it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast
from urllib.parse import quote

from aiohttp import web

from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action
from appservices.commerce.support import storage as support
from appservices.commerce.web.console import (
    ConsoleContext,
    Section,
    add_section,
    console_page,
    render_console,
)
from appservices.commerce.web.console_forms import when
from mercato.logging import get_logger

log = get_logger(__name__)

SHOWN = 50
READ_TIMEOUT = 5.0
PREVIEW_CHARS = 280


class MessageReader(Protocol):
    async def message_text(self, merchant: store.Merchant, room_id: str,
                           event_id: str) -> str: ...


def matrix_to(room_id: str, event_id: str | None = None) -> str:
    """A matrix.to link to a room, or to one event in it (any client opens it)."""
    link = f"https://matrix.to/#/{quote(room_id, safe='')}"
    return f"{link}/{quote(event_id, safe='')}" if event_id else link


def staff_room_event(row: dict[str, Any]) -> str | None:
    """The last message's event in the staff room: the relay of a buyer's message, or the
    staff member's own reply; the thread's root when nothing was relayed yet."""
    if row["direction"] == "in":
        return str(row["relayed_event_id"])
    if row["direction"] == "out":
        return str(row["source_event_id"])
    return row["thread_event_id"]


def dm_event(row: dict[str, Any]) -> str | None:
    """The last message's event in the buyer's DM (the buyer's own, or the shop's reply)."""
    if row["direction"] == "in":
        return str(row["source_event_id"])
    if row["direction"] == "out":
        return str(row["relayed_event_id"])
    return None


async def _last_text(cc: ConsoleContext, row: dict[str, Any]) -> str | None:
    """The last message's text, or None when the homeserver could not tell us."""
    event_id = dm_event(row)
    if event_id is None:
        return ""
    reader = cast(MessageReader, cc.api.matrix)
    try:
        text = await asyncio.wait_for(
            reader.message_text(cc.merchant, row["dm_room_id"], event_id), READ_TIMEOUT)
    except Exception as e:  # one unreadable message must not take the page down
        log.info("console.message_unreadable", shop=cc.slug, error=str(e)[:200])
        return None
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


async def customers_page(request: web.Request) -> web.Response:
    cc = await console_page(request, request.match_info["slug"], Action.ANSWER_BUYERS)
    rows = await support.conversations_of_shop(cc.api.db, cc.slug, SHOWN)
    texts = await asyncio.gather(*(_last_text(cc, row) for row in rows))
    staff_room = cc.merchant.staff_room_id
    conversations = [{
        "buyer": row["buyer_id"], "text": text, "from_buyer": row["direction"] != "out",
        "at": when(row["last_at"] or row["created_at"]),
        "link": matrix_to(staff_room, staff_room_event(row)) if staff_room else "",
    } for row, text in zip(rows, texts, strict=True)]
    return await render_console(request, cc, "console/customers.html.j2",
                                conversations=conversations,
                                staff_room_link=matrix_to(staff_room) if staff_room else "")


def add_routes(app: web.Application) -> None:
    add_section(app, Section("customers", "Customers", "customers", (Action.ANSWER_BUYERS,), 60))
    app.router.add_get("/console/{slug}/customers", customers_page)
