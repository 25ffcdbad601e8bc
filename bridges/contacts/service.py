"""The contacts bridge process: its bot answers people who open a DM with it."""

from __future__ import annotations

import time
from typing import Any

from mautrix.types import Event as MatrixEvent
from mautrix.types import EventType, MessageEvent, TextMessageEventContent, UserID

from bridges.contacts.db.upgrade import upgrade_table
from mercato.config import MercatoConfig
from mercato.logging import get_logger
from mercato.matrix.appservice import MercatoAppService

log = get_logger(__name__)

GREETING = (
    "Hi, I am Mercato's contacts bridge. I will help you find which of your contacts "
    "are already on this network, without anyone's address book leaving your hands "
    "in clear text. Contact import is not switched on on this server yet."
)


class ContactsBridge(MercatoAppService):
    name = "contacts"

    def __init__(self, config: MercatoConfig) -> None:
        super().__init__(config, config.contacts, upgrade_table)

    async def handle_event(self, event: MatrixEvent, raw: dict[str, Any]) -> None:
        if await self.accept_invite_if_for_bot(event):
            await self._greet(UserID(event.sender), event.room_id)
            return
        if (event.type == EventType.ROOM_MESSAGE and isinstance(event, MessageEvent)
                and event.sender != self.bot_mxid):
            await self.bot.send_message(event.room_id, TextMessageEventContent(
                msgtype="m.notice", body=GREETING))

    async def _greet(self, user_id: UserID, room_id: str) -> None:
        greeted = await self.db.fetchval(
            "SELECT greeted_at FROM bridge_user WHERE user_id=$1 AND dm_room_id=$2",
            user_id, room_id)
        if greeted:
            return
        await self.bot.send_message_event(
            room_id, EventType.ROOM_MESSAGE,
            TextMessageEventContent(msgtype="m.notice", body=GREETING),
            txn_id=f"mercato.contacts.greet.{room_id}")
        await self.db.execute(
            "INSERT INTO bridge_user (user_id, dm_room_id, greeted_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (user_id) DO UPDATE SET dm_room_id=excluded.dm_room_id,"
            " greeted_at=excluded.greeted_at",
            user_id, room_id, int(time.time() * 1000))
