"""The Circle's Matrix side: circle rooms and Spaces made by @mercato, invitations and
removals, and the outbox's hooks for recommendations and their edits.

Every recommendation is one message in its owner's circle room, recorded in the outbox
(kind `circle_recommendation`) and rendered when it is sent: the product's card of that
moment, or the quoted post. A price or stock change queues an edit (kind `circle_edit`,
named by the recommendation, in place of an older edit still waiting), rendered when it is
sent too, so a friend's client shows today's price in place. A shop's suspension holds
them; a deleted product drops them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
from mautrix.api import Method
from mautrix.errors import MatrixRequestError, MNotFound
from mautrix.types import EventType, RoomCreatePreset, RoomID, UserID

from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.circle import rules
from appservices.commerce.circle import storage as rows
from appservices.commerce.circle.friends import FriendFinder
from appservices.commerce.shops import channels
from appservices.commerce.shops import storage as store
from mercato.db import Connection
from mercato.logging import get_logger
from mercato.matrix.outbox import Message, Outbox, Outgoing
from mercato.matrix.outbox_hooks import Drop, Hold
from mercato.matrix.paths import matrix_path, synapse_path
from mercato.matrix.sending import create_room_once

if TYPE_CHECKING:
    from appservices.commerce.matrix import CommerceMatrix

log = get_logger(__name__)

RECOMMENDATION = "circle_recommendation"  # the outbox kinds
RECOMMENDATION_EDIT = "circle_edit"
SPACE_CHILD = EventType.find("m.space.child", EventType.Class.STATE)


class CircleRooms:
    """The circle rooms and Spaces, as the commerce bot keeps them."""

    def __init__(self, service: CommerceMatrix) -> None:
        self.service = service
        self.db = service.db
        self.friends = FriendFinder(service.config)

    def register(self, outbox: Outbox) -> None:
        outbox.on_build(RECOMMENDATION, self._build_recommendation)
        outbox.on_sent(RECOMMENDATION, self._recommendation_sent)
        outbox.on_build(RECOMMENDATION_EDIT, self._build_edit)
        outbox.on_sent(RECOMMENDATION_EDIT, self._edit_sent)

    @property
    def bot_mxid(self) -> str:
        return str(self.service.bot_mxid)

    @property
    def mercato_hosts(self) -> tuple[str, ...]:
        return self.service.mercato_hosts

    def _creator_in_users(self) -> bool:
        return not channels.room_version_has_privileged_creators(self.service.room_version)

    # -- rooms -----------------------------------------------------------------------------

    async def display_name(self, user_id: str) -> str:
        try:
            name = await self.service.bot.get_displayname(UserID(user_id))
        except MatrixRequestError:
            name = None
        return name or user_id.split(":", 1)[0].lstrip("@")

    async def create_circle_room(self, owner: str, name: str) -> str:
        room_id = await create_room_once(
            self.service.bot, owner, field=rules.CIRCLE_ROOM_MARKER,
            preset=RoomCreatePreset.PRIVATE, name=rules.circle_room_name(name),
            topic=rules.circle_topic(name),
            power_level_override=rules.circle_power_levels(
                owner, self.bot_mxid, creator_in_users=self._creator_in_users()),
            initial_state=[
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}},
                {"type": "m.room.history_visibility", "state_key": "",
                 "content": {"history_visibility": "shared"}},
                {"type": "m.room.guest_access", "state_key": "",
                 "content": {"guest_access": "forbidden"}}])
        # Invited after creation: in createRoom one unreachable server fails the whole call.
        await self.invite(room_id, owner)
        log.info("circle.room_created", owner=owner, room_id=room_id)
        return room_id

    async def create_space(self, owner: str) -> str:
        space_id = await create_room_once(
            self.service.bot, owner, field=rules.SPACE_MARKER,
            preset=RoomCreatePreset.PRIVATE, name=rules.SPACE_NAME,
            topic="The channels you follow and your friends' Circles.",
            creation_content={"type": "m.space"},
            power_level_override=rules.space_power_levels(
                owner, self.bot_mxid, creator_in_users=self._creator_in_users()),
            initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                            "content": {"history_visibility": "shared"}}])
        await self.invite(space_id, owner)
        log.info("circle.space_created", owner=owner, space_id=space_id)
        return space_id

    async def membership(self, room_id: str, user_id: str) -> str | None:
        try:
            member = await self.service.bot.api.request(Method.GET, matrix_path(
                "client", "v3", "rooms", room_id, "state", "m.room.member", user_id))
        except MNotFound:
            return None
        return member.get("membership")

    async def direct_partners(self, user_id: str) -> list[str]:
        """Who `user_id` has a direct chat with, as their client lists it, told by the
        homeserver's Mercato module (synapse_module.py) to commerce alone. Empty for a user
        of another server, or when the homeserver runs without the module."""
        if user_id.split(":", 1)[-1] != self.service.config.server_name:
            return []
        try:
            answer = await self.service.bot.api.request(
                Method.GET, synapse_path("client", "mercato", "direct_partners"),
                query_params={"user": user_id})
        except (MatrixRequestError, aiohttp.ClientError, TimeoutError) as e:
            log.warning("circle.direct_partners_unavailable", user_id=user_id, error=str(e))
            return []
        partners = answer.get("partners") if isinstance(answer, dict) else None
        return [p for p in partners or [] if isinstance(p, str) and p != user_id]

    async def invite(self, room_id: str, user_id: str) -> None:
        if await self.membership(room_id, user_id) in ("join", "invite", "ban"):
            return
        await self.service.bot.api.request(
            Method.POST, matrix_path("client", "v3", "rooms", room_id, "invite"),
            {"user_id": user_id})

    async def kick(self, room_id: str, user_id: str, reason: str) -> None:
        if await self.membership(room_id, user_id) not in ("join", "invite", "knock"):
            return
        await self.service.bot.kick_user(RoomID(room_id), UserID(user_id), reason)

    async def set_space_child(self, space_id: str, room_id: str, present: bool) -> None:
        """Add a room to a Space (`via` this server, where the bot is in it) or take it out."""
        content: dict[str, Any] = {"via": [self.service.config.server_name]} if present else {}
        await self.service.bot.send_state_event(RoomID(space_id), SPACE_CHILD, content,
                                                state_key=room_id)

    async def post_text(self, room_id: str, event_id: str) -> str:
        """A channel post's text, to quote it."""
        event = await self.service.bot.api.request(Method.GET, matrix_path(
            "client", "v3", "rooms", room_id, "event", event_id))
        content = event.get("content") or {}
        return str(content.get("body") or "")

    async def queue_recommendation(self, room_id: str, txn_id: str, conn: Connection) -> None:
        await self.service.messages.record(Message(
            txn_id=txn_id, room_id=room_id, sender=self.bot_mxid, content={},
            kind=RECOMMENDATION, subject=txn_id), conn)

    async def queue_edit(self, rec: rows.Recommendation, txn_id: str,
                         conn: Connection) -> None:
        await self.service.messages.replace_pending(Message(
            txn_id=txn_id, room_id=rec.room_id, sender=self.bot_mxid, content={},
            kind=RECOMMENDATION_EDIT, subject=str(rec.id)), conn)

    def wake_messages(self) -> None:
        self.service.wake_messages()

    # -- the outbox's hooks ---------------------------------------------------------------

    async def render(self, rec: rows.Recommendation) -> dict[str, Any] | Hold | Drop:
        """The recommendation as it reads now."""
        merchant = await store.get_merchant(self.db, store.MerchantSlug(rec.merchant_slug))
        if merchant is None:
            return Drop("the shop is gone")
        if merchant.status != "approved":
            return Hold("the shop is not active")
        by = rules.Recommender(rec.owner_id, rec.recommender_name)
        if rec.sku is None:
            link = rules.matrix_to(rec.source_room_id or "", rec.source_event_id or "")
            return rules.post_recommendation(merchant.name, rec.quote, link, by, rec.note)
        product = await product_rows.get_product(self.db, rec.merchant_slug, rec.sku)
        if product is None:
            return Drop("the product was deleted")
        card = catalog.card_for(self.service, merchant, product)
        return rules.product_recommendation(card, by, rec.note)

    async def _build_recommendation(self, message: Outgoing) -> dict[str, Any] | Hold | Drop:
        rec = await rows.by_txn(self.db, message.txn_id)
        if rec is None:
            return Drop("no record of this recommendation")
        return await self.render(rec)

    async def _recommendation_sent(self, message: Outgoing, event_id: str) -> None:
        rec = await rows.by_txn(self.db, message.txn_id)
        if rec is None:
            return
        await rows.mark_sent(self.db, rec.id, event_id)
        await self._record_shown(rec.id, message.content)

    async def _build_edit(self, message: Outgoing) -> dict[str, Any] | Hold | Drop:
        rec = await rows.by_id(self.db, int(message.subject or 0))
        if rec is None or rec.event_id is None:
            return Drop("no sent recommendation to edit")
        content = await self.render(rec)
        if isinstance(content, Hold | Drop):
            return content
        return rules.recommendation_edit(content, rec.event_id)

    async def _edit_sent(self, message: Outgoing, event_id: str) -> None:
        await self._record_shown(int(message.subject or 0),
                                 message.content.get("m.new_content") or {})

    async def _record_shown(self, rec_id: int, content: dict[str, Any]) -> None:
        shown = content.get(products.PRODUCT_KEY)
        if isinstance(shown, dict):
            await rows.set_shown(self.db, rec_id, str(shown.get("price")),
                                 str(shown.get("stock")))
