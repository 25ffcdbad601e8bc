"""The Matrix side of commerce: what shops, campaigns and the catalog ask of Matrix (their
`ShopMatrix`, `BroadcastMatrix` and `CatalogMatrix` ports), done as the shops' users.

Shops' rooms (channels, staff rooms, DMs with buyers) are created here, once each; every
message goes through the core outbox (`self.messages`), recorded before it is sent.
`service.py` builds the parts this class uses and routes events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mautrix.api import Method
from mautrix.errors import IntentError, MatrixRequestError, MNotFound
from mautrix.types import (
    ContentURI,
    EventID,
    EventType,
    Format,
    Membership,
    MemberStateEventContent,
    MessageType,
    RoomAlias,
    RoomCreatePreset,
    RoomDirectoryVisibility,
    RoomID,
    TextMessageEventContent,
    UserID,
)

from appservices.commerce import messages as message_kinds
from appservices.commerce.errors import CommerceError, Forbidden
from appservices.commerce.shops import channels
from appservices.commerce.shops import operations as merchants
from appservices.commerce.shops import storage as store
from appservices.commerce.support import storage as support_rows
from mercato.db import Connection
from mercato.faults import fault_point
from mercato.logging import get_logger
from mercato.matrix.appservice import MercatoAppService
from mercato.matrix.html import sanitize_html
from mercato.matrix.outbox import Message
from mercato.matrix.outbox import Outbox as MessageOutbox
from mercato.matrix.paths import matrix_path
from mercato.matrix.rooms import resolve_room
from mercato.matrix.sending import create_room_once, retrying
from mercato.templates import template_environment

if TYPE_CHECKING:
    from appservices.commerce.directory import ShopDirectory
    from appservices.commerce.worker import DeliveryWorker

log = get_logger(__name__)

TEMPLATES = template_environment(Path(__file__).parent / "templates")
SHOP_STATE = EventType.find(channels.SHOP_STATE_EVENT, EventType.Class.STATE)
# In the creation content of a shop's DM with a buyer: the buyer it was made for.
DIRECT_MARKER = "org.mercato.direct_with"


class CommerceMatrix(MercatoAppService):
    """The appservice as the features' Matrix port; `CommerceAppService` wires it."""

    room_version: str
    messages: MessageOutbox
    directory: ShopDirectory
    delivery: DeliveryWorker
    mercato_hosts: tuple[str, ...]
    public_url: str

    def shop_mxid(self, slug: str) -> UserID:
        return UserID(self.config.user_id(f"{self.config.commerce.user_prefix}{slug}"))

    def channel_alias(self, slug: str) -> RoomAlias:
        localpart = channels.channel_alias_localpart(self.config.commerce.user_prefix, slug)
        return RoomAlias(f"#{localpart}:{self.config.server_name}")

    def is_shop_user(self, user_id: str) -> bool:
        return (user_id.startswith(f"@{self.config.commerce.user_prefix}")
                and user_id.endswith(f":{self.config.server_name}"))

    def is_own_user(self, user_id: str) -> bool:
        return user_id == self.bot_mxid or self.is_shop_user(user_id)

    def wake_outbox(self) -> None:
        """A campaign is due: the delivery worker looks now."""
        self.delivery.wakeup.set()

    def wake_messages(self) -> None:
        """Messages were recorded in a transaction now committed: the outbox looks now."""
        self.messages.wake()

    # -- ShopMatrix: what the merchant lifecycle needs from Matrix -----------------------

    async def provision_shop(self, merchant: store.Merchant) -> RoomID:
        intent = self.intent_for(merchant.mxid)
        await intent.ensure_registered()
        await intent.set_displayname(channels.shop_display_name(merchant.name, merchant.verified))
        if merchant.avatar_url:
            await intent.set_avatar_url(ContentURI(merchant.avatar_url))
        await self.ensure_primary_channel(merchant)
        return merchant.staff_room_id or await self._create_staff_room(merchant)

    async def publish_shop_state(self, merchant: store.Merchant) -> None:
        intent = self.intent_for(merchant.mxid)
        await intent.ensure_registered()
        await intent.set_displayname(channels.shop_display_name(merchant.name, merchant.verified))
        if merchant.avatar_url:
            await intent.set_avatar_url(ContentURI(merchant.avatar_url))
        verified_on = (datetime.fromtimestamp(merchant.verified_at / 1000, UTC).date().isoformat()
                       if merchant.verified_at else None)
        verifier = None
        if merchant.verified:
            verifier = (f"the operator of {self.config.server_name}"
                        if merchant.verification_method == "operator"
                        else f"domain proof checked by {self.config.server_name}")
        state: dict[str, Any] = {
            "slug": merchant.slug,
            "name": merchant.name,
            "status": merchant.status,
            "verified": merchant.verified,
            "verification": {"verified_by": verifier, "verified_at": merchant.verified_at,
                             "website": merchant.verified_website,
                             "method": merchant.verification_method}
            if merchant.verified else None,
        }
        for channel in await store.channels_of(self.db, merchant.slug):
            room_id = channel.room_id
            if channel.is_primary and channel.name != merchant.name:  # the shop was renamed
                await intent.set_room_name(room_id, merchant.name)
                await store.rename_channel(self.db, room_id, merchant.name)
            await intent.set_room_topic(room_id, channels.channel_topic(
                merchant.name, merchant.description, status=merchant.status,
                verified_by=verifier, verified_on=verified_on,
                website=merchant.verified_website))
            await intent.send_state_event(room_id, SHOP_STATE, state, state_key="")
        if merchant.staff_room_id:
            # Synapse keeps an unchanged name as it is, without a new event.
            await intent.set_room_name(merchant.staff_room_id, f"{merchant.name} — staff")
            await intent.send_state_event(merchant.staff_room_id, SHOP_STATE, state,
                                          state_key="")
        await self.directory.update(merchant)

    async def _staff_room_membership(self, room_id: str, shop: UserID,
                                     user_id: str) -> Membership | None:
        try:
            member = await self.intent_for(shop).get_state_event(
                RoomID(room_id), EventType.ROOM_MEMBER, user_id)
        except MNotFound:
            return None
        return member.membership if isinstance(member, MemberStateEventContent) else None

    async def invite_staff(self, merchant: store.Merchant, user_id: str) -> str:
        if user_id.endswith(f":{self.config.server_name}"):
            # Synapse invites local users that do not exist; a profile tells.
            try:
                await self.bot.get_profile(UserID(user_id))
            except MatrixRequestError as e:
                if e.http_status != 404:  # Synapse says M_UNKNOWN "No row found"
                    raise
                raise merchants.StaffInviteFailed("no such user", user_unknown=True) from None
        if not merchant.staff_room_id:
            return "after_approval"
        if await self._staff_room_membership(merchant.staff_room_id, merchant.mxid,
                                             user_id) in (Membership.JOIN, Membership.INVITE):
            return "already_member"
        await self._invite_to_staff_room(merchant.staff_room_id, merchant.mxid, user_id)
        return "sent"

    async def _invite_to_staff_room(self, room_id: str, shop: UserID, user_id: str) -> None:
        try:
            # No retries: an owner waits for this answer, and Synapse already retried
            # the user's server before giving up.
            await self.intent_for(shop).api.request(
                Method.POST, matrix_path("client", "v3", "rooms", room_id, "invite"),
                {"user_id": user_id}, retry_count=0)
        except MatrixRequestError as e:
            raise merchants.StaffInviteFailed(e.message or str(e)) from None

    async def remove_staff(self, merchant: store.Merchant, user_id: str) -> None:
        # Someone whose invite never reached them has no membership to take back.
        if merchant.staff_room_id and await self._staff_room_membership(
                merchant.staff_room_id, merchant.mxid, user_id) in (
                Membership.JOIN, Membership.INVITE, Membership.KNOCK):
            await self.intent_for(merchant.mxid).kick_user(
                RoomID(merchant.staff_room_id), UserID(user_id), "No longer staff of the shop")

    # -- BroadcastMatrix: what campaigns need from Matrix --------------------------------

    async def send_preview(self, merchant: store.Merchant, content: dict[str, Any],
                           campaign_id: int) -> str:
        if not merchant.staff_room_id:
            raise CommerceError("The shop has no staff room yet; it is created on approval.")
        event_id = await self.messages.send(Message(
            txn_id=f"mercato.preview.{campaign_id}.{store.now_ms()}",
            room_id=merchant.staff_room_id, sender=merchant.mxid, content=content,
            kind=message_kinds.PREVIEW))
        return event_id or ""

    async def retract_post(self, merchant: store.Merchant, room_id: str, event_id: str,
                           reason: str) -> None:
        await self.intent_for(merchant.mxid).redact(RoomID(room_id), EventID(event_id),
                                                    reason=reason)

    async def direct_room(self, merchant: store.Merchant, user_id: str, *,
                          adopt: bool | None = None) -> str:
        """The shop's DM with a buyer: the customer-service one if it exists, else a new one.

        `adopt`: an earlier attempt may have created the room (default: the inbox is
        handling the event again).
        """
        existing = await support_rows.dm_room_of(self.db, merchant.slug, user_id)
        if existing:
            return existing
        # An earlier try of this event may have created the room and stopped before
        # recording it: then that room is the buyer's DM, not a second one.
        room_id = await create_room_once(
            self.intent_for(merchant.mxid), user_id, field=DIRECT_MARKER, adopt=adopt,
            preset=RoomCreatePreset.TRUSTED_PRIVATE, is_direct=True,
            invitees=[UserID(user_id)])
        fault_point("direct_room.created")  # created, not yet recorded
        # The buyer's answers in this room reach the shop's staff like any conversation.
        await support_rows.open_thread(self.db, room_id, merchant.slug, user_id)
        return room_id

    async def send_direct(self, merchant: store.Merchant, user_id: str, text: str,
                          txn_id: str, *, kind: str = message_kinds.DIRECT,
                          subject: str | None = None) -> tuple[str, str]:
        """Record a message to the buyer's DM; held until they join if they have not yet.

        Returns (room ID, event ID), the event ID empty: the outbox sends it (the hook of
        its `kind` records what it delivered).
        """
        room_id, joined = await self.order_room(merchant, user_id)
        content = {"msgtype": "m.text", "body": text}
        await self.messages.record(Message(
            txn_id=txn_id, room_id=room_id, sender=merchant.mxid, content=content, kind=kind,
            subject=subject, held_for=None if joined else user_id))
        return room_id, ""

    # -- CatalogMatrix: cards ---------------------------------------------------------------

    async def resolve_room(self, room: str) -> str:
        """A room ID as it is; an alias through the directory (UnknownAlias if none has it)."""
        return await resolve_room(self.bot.api, room)

    async def post_card(self, merchant: store.Merchant, room_id: str, content: dict[str, Any],
                        txn_id: str) -> str:
        intent = self.intent_for(merchant.mxid)
        try:
            await intent.ensure_joined(RoomID(room_id))
        except (IntentError, MatrixRequestError):
            raise Forbidden(f"The shop is not in {room_id} and cannot join it: invite "
                            f"{merchant.mxid} to the room first.",
                            errcode="MERCATO_NOT_IN_ROOM") from None
        event_id = await self.messages.send(Message(
            txn_id=txn_id, room_id=room_id, sender=merchant.mxid, content=content,
            kind=message_kinds.CARD_SHARE))
        return event_id or ""  # still queued: the outbox records the card when it is sent

    async def queue_card_edit(self, merchant: store.Merchant, room_id: str,
                              card_event_id: str, txn_id: str, conn: Connection) -> None:
        """An edit of a posted card, in place of an older one of that card still waiting;
        its content is the card of the moment it is sent (catalog/card_delivery.py)."""
        await self.messages.replace_pending(Message(
            txn_id=txn_id, room_id=room_id, sender=merchant.mxid, content={},
            kind=message_kinds.CARD_EDIT, subject=card_event_id), conn)

    async def download_media(self, merchant: store.Merchant, mxc: str) -> bytes:
        return await self.intent_for(merchant.mxid).download_media(ContentURI(mxc))

    async def thumbnail_media(self, merchant: store.Merchant, mxc: str, width: int,
                              height: int) -> bytes:
        """The homeserver's scaled thumbnail of an image (the storefront's grid)."""
        return await self.intent_for(merchant.mxid).download_thumbnail(
            ContentURI(mxc), width=width, height=height, resize_method="scale")

    async def message_text(self, merchant: store.Merchant, room_id: str,
                           event_id: str) -> str:
        """The plain `body` of a message in one of the shop's rooms, read as the shop (the
        console's Customers page shows each conversation's last message; nothing is kept)."""
        event = await self.intent_for(merchant.mxid).get_event(RoomID(room_id),
                                                              EventID(event_id))
        body = getattr(event.content, "body", "")
        return body if isinstance(body, str) else ""

    async def upload_image(self, merchant: store.Merchant, data: bytes, mimetype: str,
                           filename: str) -> str:
        return await self.intent_for(merchant.mxid).upload_media(
            data, mime_type=mimetype, filename=filename)

    async def send_coupon_code(self, merchant: store.Merchant, user_id: str, text: str,
                               code: str) -> tuple[str, str]:
        return await self.send_direct(merchant, user_id, text, txn_id=f"mercato.coupon.{code}",
                                      kind=message_kinds.COUPON_CODE, subject=code)

    # -- OrdersMatrix: the buyer's DM for order messages -----------------------------------

    async def order_room(self, merchant: store.Merchant, user_id: str) -> tuple[str, bool]:
        """The shop's DM with the buyer and whether the buyer is in it; a buyer who left
        it is invited back (what is sent waits for their join).

        A homeserver busy with a burst of orders may fail a step (5xx): each is tried
        again, the room's creation finding the room an earlier attempt made.
        """
        room_id = await retrying(lambda attempt: self.direct_room(
            merchant, user_id, adopt=True if attempt else None), what="direct_room")
        membership = await retrying(lambda _: self._back_in_dm(merchant, room_id, user_id),
                                    what="direct_membership")
        return room_id, membership == "join"

    async def _back_in_dm(self, merchant: store.Merchant, room_id: str,
                          user_id: str) -> str | None:
        """The buyer's membership in their DM with the shop, inviting back one who left."""
        intent = self.intent_for(merchant.mxid)
        try:
            member = await intent.api.request(Method.GET, matrix_path(
                "client", "v3", "rooms", room_id, "state", "m.room.member", user_id))
        except MNotFound:
            return None
        membership = member.get("membership")
        if membership == "leave":
            await intent.invite_user(RoomID(room_id), UserID(user_id))
        return str(membership) if membership else None

    async def queue_message(self, message: Message, conn: Any) -> None:
        """Record a message in the outbox inside the caller's transaction (`conn`)."""
        await self.messages.record(message, conn)

    # -- rooms -----------------------------------------------------------------------------

    def _power_levels(self, shop: str, *, members_level: int = 0) -> dict:
        return channels.channel_power_levels(
            shop, self.bot_mxid, creator_in_users=not channels.room_version_has_privileged_creators(
                self.room_version))

    async def _create_staff_room(self, merchant: store.Merchant) -> RoomID:
        intent = self.intent_for(merchant.mxid)
        staff = [UserID(m.user_id) for m in await store.staff_of(self.db, merchant.slug)]
        users = {self.bot_mxid: 100}
        if not channels.room_version_has_privileged_creators(self.room_version):
            users[merchant.mxid] = 100
        # A shop is in few rooms when it is provisioned: finding the staff room an
        # interrupted approval created is cheap, and a second one would split the staff.
        room_id = RoomID(await create_room_once(
            intent, f"staff:{merchant.slug}", adopt=True,
            preset=RoomCreatePreset.PRIVATE,
            name=f"{merchant.name} — staff",
            topic=channels.staff_room_topic(merchant.name),
            invitees=[self.bot_mxid],
            power_level_override={"users": users, "users_default": 0, "events_default": 0,
                                  "invite": 100, "kick": 100, "ban": 100, "state_default": 100},
        ))
        await self.bot.ensure_joined(room_id)
        # Invited one by one: in createRoom, one unreachable server fails the whole call.
        for user_id in staff:
            try:
                await self._invite_to_staff_room(room_id, merchant.mxid, user_id)
            except merchants.StaffInviteFailed as e:
                log.warning("staff_room.invite_failed", slug=merchant.slug, user_id=user_id,
                            error=e.reason)
        log.info("staff_room.created", slug=merchant.slug, room_id=room_id, staff=len(staff))
        return room_id

    async def ensure_primary_channel(self, merchant: store.Merchant) -> store.Channel:
        """The shop's main channel: created once, adopted if a crash left it unrecorded."""
        existing = [c for c in await store.channels_of(self.db, merchant.slug) if c.is_primary]
        channel = existing[0] if existing else await self._create_channel(merchant)
        # Idempotent, and lists channels made before the directory allowed shops.
        await self.intent_for(merchant.mxid).set_room_directory_visibility(
            channel.room_id, RoomDirectoryVisibility.PUBLIC)
        if not channel.welcome_event_id:
            await self._post_welcome(merchant, channel)  # its hook records the event ID
            channel = await store.get_channel(self.db, channel.room_id) or channel
        return channel

    async def open_channel(self, merchant: store.Merchant, suffix: str,
                           name: str) -> store.Channel:
        """Another channel of the shop (a region, a product line): #<prefix><slug>-<suffix>."""
        channel = await self._create_channel(merchant, suffix=suffix, name=name)
        await self.intent_for(merchant.mxid).set_room_directory_visibility(
            channel.room_id, RoomDirectoryVisibility.PUBLIC)
        await self._post_welcome(merchant, channel)
        await self.publish_shop_state(merchant)
        return await store.get_channel(self.db, channel.room_id) or channel

    async def _create_channel(self, merchant: store.Merchant, *, suffix: str = "",
                              name: str = "") -> store.Channel:
        intent = self.intent_for(merchant.mxid)
        alias = self.channel_alias(f"{merchant.slug}-{suffix}" if suffix else merchant.slug)
        name = name or merchant.name
        try:
            room_id = (await intent.resolve_room_alias(alias)).room_id
            log.info("channel.adopted", slug=merchant.slug, room_id=room_id)
        except MNotFound:
            room_id = await intent.create_room(
                alias_localpart=alias[1:].split(":", 1)[0],
                visibility=RoomDirectoryVisibility.PUBLIC,
                preset=RoomCreatePreset.PUBLIC,
                name=name,
                topic=channels.channel_topic(merchant.name, merchant.description),
                power_level_override=self._power_levels(merchant.mxid),
                initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                                "content": {"history_visibility": "world_readable"}}],
            )
            log.info("channel.created", slug=merchant.slug, room_id=room_id, alias=alias)
        await self.bot.ensure_joined(room_id)
        channel = store.Channel(room_id=room_id, merchant_slug=merchant.slug, alias=alias,
                                name=name, is_primary=not suffix, welcome_event_id=None)
        await store.insert_channel(self.db, channel)
        return channel

    async def _post_welcome(self, merchant: store.Merchant,
                            channel: store.Channel) -> str | None:
        values = {"shop_name": merchant.name, "shop_mxid": merchant.mxid}
        content = TextMessageEventContent(
            msgtype=MessageType.TEXT,
            body=TEMPLATES.get_template("welcome.txt.j2").render(values),
            format=Format.HTML,
            formatted_body=sanitize_html(
                TEMPLATES.get_template("welcome.html.j2").render(values)),
        )
        # A txnId derived from the room: a retry after a crash does not post it twice.
        event_id = await self.messages.send(Message(
            txn_id=f"mercato.welcome.{channel.room_id}", room_id=channel.room_id,
            sender=merchant.mxid, content=content.serialize(), kind=message_kinds.WELCOME))
        log.info("channel.welcome_posted", slug=merchant.slug, event_id=event_id)
        return event_id
