"""Chats the bridge opens between people who found each other, and the "Contacts" space
it keeps for each user that asked, listing those chats.

A chat is opened by the bridge bot (the appservice cannot act as either person): it
creates a private direct chat, invites both with `is_direct` and gives both the
creator's power, and leaves once neither is still invited (both joined, or one
declined) — from then on the room is theirs alone. One chat per pair of people,
whoever asked first. It does not leave earlier: an invitation is accepted through a
server with someone in the room, so if the first to join left again before the other
accepted, a room the bot had already left would have no one to let the other in.

The space is a room of type `m.space` the bot owns (only it may change its children),
created once per user and remembered; each chat the user asked for becomes an
`m.space.child` of it. Sending that state again changes nothing, so a chat whose child
event was not recorded as sent (a crash in between) is simply sent again at start-up.
Chats and spaces carry what they were made for in their creation content, so an event
handled again after a crash between creating one and recording it finds that room
instead of opening a second.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from mautrix.appservice import IntentAPI
from mautrix.errors import MatrixRequestError
from mautrix.types import (
    EventType,
    Membership,
    MemberStateEventContent,
    RoomCreatePreset,
    RoomID,
    UserID,
)

from bridges.contacts.db import store
from mercato.db import Database
from mercato.faults import fault_point
from mercato.logging import get_logger
from mercato.matrix.appservice import membership_of
from mercato.matrix.sending import create_room_once

log = get_logger(__name__)

SPACE_NAME = "Contacts"
SPACE_TOPIC = ("Chats with people from your address book, opened for you by Mercato's "
               "contacts bridge.")
SPACE_CHILD = EventType.find("m.space.child", EventType.Class.STATE)
# Chats opened for one request; more are opened by naming the person (`dm @…`).
MAX_CHATS_PER_REQUEST = 25


def chat_key(one: str, other: str) -> str:
    """What a chat's creation content says it was opened for: the pair, in either order
    (a retry after a crash finds the chat by it)."""
    return "chat:" + " ".join(sorted((one, other)))


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


class ContactsSpaces:
    def __init__(self, db: Database, bot: Callable[[], IntentAPI], server_name: str) -> None:
        self.db = db
        self._bot = bot
        self.server_name = server_name
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @property
    def bot(self) -> IntentAPI:
        return self._bot()

    async def open_chats(self, user_id: str, others: Sequence[str]) -> dict[str, str]:
        """Matrix ID → room of a chat between `user_id` and each (the first
        MAX_CHATS_PER_REQUEST), opened if there was none, each a child of their space."""
        opened: dict[str, str] = {}
        for other in list(dict.fromkeys(o for o in others if o != user_id))[
                :MAX_CHATS_PER_REQUEST]:
            opened[other] = await self.open_chat(user_id, other)
        return opened

    async def open_chat(self, user_id: str, other: str) -> str:
        async with self._locks[user_id]:
            room_id = await store.chat_between(self.db, user_id, other)
            if room_id is None:
                room_id = await create_room_once(
                    self.bot, chat_key(user_id, other), preset=RoomCreatePreset.TRUSTED_PRIVATE,
                    is_direct=True, invitees=[UserID(user_id), UserID(other)])
                fault_point("contacts.chat.created")  # created, not yet recorded
                log.info("chat.opened", user_id=user_id, other=other, room_id=room_id)
            await store.add_opened_chat(self.db, user_id, other, room_id)
            await self._add_child(user_id, room_id)
        return room_id

    async def add_child(self, user_id: str, room_id: str, *, recovering: bool = False) -> None:
        """Put a room the bridge made for the user (a network portal) in their space;
        `recovering`: this is the start-up catch-up after a crash or an outage."""
        async with self._locks[user_id]:
            await self._add_child(user_id, room_id, recovering=recovering)

    async def space_of(self, user_id: str, *, recovering: bool = False) -> str:
        """The user's space, created (and the user invited) the first time.

        Work done again — an event the inbox hands over again, or the catch-up at
        start-up (`recovering`) — first looks for a space an interrupted try created.
        """
        room_id = await store.space_of(self.db, user_id)
        if room_id is None:
            room_id = await create_room_once(
                self.bot, f"space:{user_id}", adopt=True if recovering else None,
                name=SPACE_NAME, topic=SPACE_TOPIC,
                invitees=[UserID(user_id)],
                preset=RoomCreatePreset.PRIVATE, creation_content={"type": "m.space"},
                # Members may look, only the bridge arranges (and posts nothing).
                power_level_override={"events_default": 100, "state_default": 100,
                                      "invite": 100})
            fault_point("contacts.space.created")  # created, not yet recorded
            await store.set_space(self.db, user_id, room_id)
            log.info("space.created", user_id=user_id, room_id=room_id)
        return room_id

    async def _add_child(self, user_id: str, room_id: str, *,
                         recovering: bool = False) -> None:
        space = await self.space_of(user_id, recovering=recovering)
        child: Any = {"via": [self.server_name]}
        await self.bot.send_state_event(RoomID(space), SPACE_CHILD, child, state_key=room_id)
        await store.mark_in_space(self.db, user_id, room_id)
        await self._invite_back(space, user_id)

    async def _invite_back(self, space: str, user_id: str) -> None:
        """Someone who left their space is invited again when it gains a chat (they can
        decline; the space is where the bridge shows what it opened for them)."""
        try:
            member = await self.bot.get_state_event(RoomID(space), EventType.ROOM_MEMBER,
                                                    state_key=user_id)
        except MatrixRequestError:
            return  # never a member that the bot can see: the creation invite stands
        if isinstance(member, MemberStateEventContent) and \
                member.membership == Membership.LEAVE:
            await self.bot.invite_user(RoomID(space), UserID(user_id))
            log.info("space.invited_back", user_id=user_id, room_id=space)

    async def catch_up(self) -> None:
        """Children whose sending was interrupted (a crash, the homeserver away)."""
        for user_id, room_id in await store.chats_not_in_space(self.db):
            try:
                async with self._locks[user_id]:
                    await self._add_child(user_id, room_id, recovering=True)
            except MatrixRequestError as e:
                log.warning("space.child_failed", user_id=user_id, room_id=room_id,
                            errcode=e.errcode)

    async def membership_changed(self, room_id: str, user_id: str) -> None:
        """One of the two joined, declined or left a chat the bridge opened: once no one
        is still invited, the bot leaves it to them."""
        if user_id == self.bot.mxid or not await store.is_opened_chat(self.db, room_id,
                                                                        user_id):
            return
        try:
            members = await self.bot.get_members(RoomID(room_id))
        except MatrixRequestError as e:  # the bot already left: nothing to do
            log.info("chat.members_unknown", room_id=room_id, errcode=e.errcode)
            return
        invited = {m.state_key for m in members if membership_of(m) == Membership.INVITE}
        if invited:
            log.info("chat.bot_stays", room_id=room_id, invited=len(invited))
            return
        try:
            await self.bot.leave_room(RoomID(room_id))
            log.info("chat.handed_over", room_id=room_id)
        except MatrixRequestError as e:  # already gone: nothing to do
            log.info("chat.leave_failed", room_id=room_id, errcode=e.errcode)
