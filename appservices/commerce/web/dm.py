"""Sending a sign-in link by DM from the commerce bot (`@mercato`, the network's shop bot
account of the commerce appservice), through the outbox like every commerce message.

The shop bot (`@shopbot`) is a separate process with no way for commerce to act as it, so
links asked for on the web come from `@mercato`; the shop bot's `web` command answers with
a link in its own DM (it asks the API for one).
"""

from __future__ import annotations

from typing import Protocol

from mautrix.api import Method
from mautrix.appservice import IntentAPI
from mautrix.errors import MatrixRequestError, MNotFound
from mautrix.types import RoomCreatePreset, RoomID, UserID

from appservices.commerce.web import storage as rows
from mercato.db import Database
from mercato.logging import get_logger
from mercato.matrix.outbox import Message, Outbox
from mercato.matrix.paths import matrix_path
from mercato.matrix.sending import create_room_once

log = get_logger(__name__)

SIGNIN_LINK = "signin_link"  # the outbox kind
DM_MARKER = "mercato.signin_dm_for"


class SigninAppService(Protocol):
    db: Database
    messages: Outbox

    @property
    def bot(self) -> IntentAPI: ...

    @property
    def bot_mxid(self) -> UserID: ...


def link_message(url: str) -> dict[str, str]:
    text = (f"Here is your link to sign in to Mercato on the web: {url}\n"
            "It works once, for 10 minutes. If you did not ask for it, ignore this message.")
    html = (f'Here is your link to sign in to Mercato on the web: <a href="{url}">sign in</a>'
            "<br>It works once, for 10 minutes. If you did not ask for it, ignore this "
            "message.")
    return {"msgtype": "m.text", "body": text, "format": "org.matrix.custom.html",
            "formatted_body": html}


class LinkSender:
    def __init__(self, appservice: SigninAppService) -> None:
        self.appservice = appservice

    async def send(self, user_id: str, url: str, token_hash: str) -> None:
        """Record the link's DM (held until the user joins the DM if they have not)."""
        room_id = await self._dm_room(user_id)
        membership = await self._membership(room_id, user_id)
        bot = self.appservice.bot
        if membership == "leave":
            await bot.invite_user(RoomID(room_id), UserID(user_id))
        await self.appservice.messages.record(Message(
            txn_id=f"mercato.signin.{token_hash[:32]}", room_id=room_id,
            sender=self.appservice.bot_mxid, content=link_message(url), kind=SIGNIN_LINK,
            held_for=None if membership == "join" else user_id))
        log.info("web.link_sent", user_id=user_id, room_id=room_id)

    async def _dm_room(self, user_id: str) -> str:
        db = self.appservice.db
        existing = await rows.signin_dm(db, user_id)
        if existing:
            return existing
        room_id = await create_room_once(
            self.appservice.bot, user_id, field=DM_MARKER, adopt=False,
            preset=RoomCreatePreset.TRUSTED_PRIVATE, is_direct=True,
            invitees=[UserID(user_id)], name="Mercato sign-in")
        await rows.set_signin_dm(db, user_id, room_id)
        return room_id

    async def _membership(self, room_id: str, user_id: str) -> str | None:
        try:
            member = await self.appservice.bot.api.request(
                Method.GET, matrix_path("client", "v3", "rooms", room_id, "state",
                                        "m.room.member", user_id))
        except MNotFound:
            return None
        except MatrixRequestError as e:
            log.warning("web.link_membership_unknown", room_id=room_id, error=str(e))
            return None
        membership = member.get("membership")
        return str(membership) if membership else None
