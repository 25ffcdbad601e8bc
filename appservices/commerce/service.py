"""The commerce appservice process: shops as Matrix users, their rooms, the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mautrix.api import Method
from mautrix.errors import MNotFound
from mautrix.types import Event as MatrixEvent
from mautrix.types import (
    EventType,
    Format,
    Membership,
    MessageType,
    RoomAlias,
    RoomCreatePreset,
    RoomDirectoryVisibility,
    StateEvent,
    TextMessageEventContent,
    UserID,
)

from appservices.commerce import channels, merchants
from appservices.commerce.api import add_api_routes
from appservices.commerce.api.routes import ApiContext
from appservices.commerce.db import access, store
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.directory import ShopDirectory
from appservices.commerce.support import SupportDesk
from mercato.config import MercatoConfig
from mercato.logging import get_logger
from mercato.matrix.appservice import MercatoAppService
from mercato.matrix.html import sanitize_html
from mercato.templates import template_environment
from mercato.types import MerchantSlug

log = get_logger(__name__)

TEMPLATES = template_environment(Path(__file__).parent / "templates")
SHOP_STATE = EventType.find(channels.SHOP_STATE_EVENT, EventType.Class.STATE)


class CommerceAppService(MercatoAppService):
    name = "commerce"

    def __init__(self, config: MercatoConfig) -> None:
        super().__init__(config, config.commerce, upgrade_table)
        self.room_version = ""
        self.support = SupportDesk(self)
        self.directory = ShopDirectory(self)
        add_api_routes(self.app, ApiContext(db=self.db, config=config.commerce, matrix=self))

    def shop_mxid(self, slug: str) -> UserID:
        return UserID(self.config.user_id(f"{self.config.commerce.user_prefix}{slug}"))

    def channel_alias(self, slug: str) -> RoomAlias:
        localpart = channels.channel_alias_localpart(self.config.commerce.user_prefix, slug)
        return RoomAlias(f"#{localpart}:{self.config.server_name}")

    def is_shop_user(self, user_id: str) -> bool:
        return (user_id.startswith(f"@{self.config.commerce.user_prefix}")
                and user_id.endswith(f":{self.config.server_name}"))

    async def on_start(self) -> None:
        capabilities = await self.bot.api.request(Method.GET, "/_matrix/client/v3/capabilities")
        self.room_version = capabilities["capabilities"]["m.room_versions"]["default"]
        if self.config.demo.enabled:
            await self._seed_demo()
        await self.directory.reconcile()

    async def _seed_demo(self) -> None:
        demo = self.config.demo
        operator = merchants.Principal(kind="operator", user_id="demo-seed")
        slug = MerchantSlug(demo.shop_slug)
        merchant = await store.get_merchant(self.db, slug)
        if merchant is None:
            merchant = await merchants.apply(self.db, self, operator, {
                "slug": slug, "name": demo.shop_name,
                "description": "A shop to try Mercato with.",
                "owner": self.config.user_id(demo.merchant.localpart)})
        if merchant.status == "pending":
            merchant = await merchants.change_status(self.db, self, operator, slug, "approve")
        else:
            await self.provision_shop(merchant)
        await access.insert_api_key(self.db, slug, demo.api_key, key_id="demo", label="demo",
                                    role="owner", created_by="demo-seed")

    # -- ShopMatrix: what the merchant lifecycle needs from Matrix -----------------------

    async def provision_shop(self, merchant: store.Merchant) -> str:
        intent = self.intent_for(merchant.mxid)
        await intent.ensure_registered()
        await intent.set_displayname(channels.shop_display_name(merchant.name, merchant.verified))
        if merchant.avatar_url:
            await intent.set_avatar_url(merchant.avatar_url)
        await self.ensure_primary_channel(merchant)
        return merchant.staff_room_id or await self._create_staff_room(merchant)

    async def publish_shop_state(self, merchant: store.Merchant) -> None:
        intent = self.intent_for(merchant.mxid)
        await intent.ensure_registered()
        await intent.set_displayname(channels.shop_display_name(merchant.name, merchant.verified))
        if merchant.avatar_url:
            await intent.set_avatar_url(merchant.avatar_url)
        verified_on = (datetime.fromtimestamp(merchant.verified_at / 1000, UTC).date().isoformat()
                       if merchant.verified_at else None)
        verifier = None
        if merchant.verified:
            verifier = (f"the operator of {self.config.server_name}"
                        if merchant.verification_method == "operator"
                        else f"domain proof checked by {self.config.server_name}")
        state = {
            "slug": merchant.slug,
            "name": merchant.name,
            "status": merchant.status,
            "verified": merchant.verified,
            "verification": {"verified_by": verifier, "verified_at": merchant.verified_at,
                             "website": merchant.verified_website,
                             "method": merchant.verification_method}
            if merchant.verified else None,
        }
        rooms = [c.room_id for c in await store.channels_of(self.db, merchant.slug)]
        for room_id in rooms:
            await intent.set_room_topic(room_id, channels.channel_topic(
                merchant.name, merchant.description, status=merchant.status,
                verified_by=verifier, verified_on=verified_on,
                website=merchant.verified_website))
            await intent.send_state_event(room_id, SHOP_STATE, state, state_key="")
        if merchant.staff_room_id:
            await intent.send_state_event(merchant.staff_room_id, SHOP_STATE, state,
                                          state_key="")
        await self.directory.update(merchant)

    async def invite_staff(self, merchant: store.Merchant, user_id: str) -> None:
        if merchant.staff_room_id:
            await self.intent_for(merchant.mxid).invite_user(merchant.staff_room_id,
                                                             UserID(user_id))

    async def remove_staff(self, merchant: store.Merchant, user_id: str) -> None:
        if merchant.staff_room_id:
            try:
                await self.intent_for(merchant.mxid).kick_user(
                    merchant.staff_room_id, UserID(user_id), "No longer staff of the shop")
            except MNotFound:
                pass

    # -- rooms -----------------------------------------------------------------------------

    def _power_levels(self, shop: str, *, members_level: int = 0) -> dict:
        return channels.channel_power_levels(
            shop, self.bot_mxid, creator_in_users=not channels.room_version_has_privileged_creators(
                self.room_version))

    async def _create_staff_room(self, merchant: store.Merchant) -> str:
        intent = self.intent_for(merchant.mxid)
        staff = [UserID(m.user_id) for m in await access.staff_of(self.db, merchant.slug)]
        users = {self.bot_mxid: 100}
        if not channels.room_version_has_privileged_creators(self.room_version):
            users[merchant.mxid] = 100
        room_id = await intent.create_room(
            preset=RoomCreatePreset.PRIVATE,
            name=f"{merchant.name} — staff",
            topic=channels.staff_room_topic(merchant.name),
            invitees=[self.bot_mxid, *staff],
            power_level_override={"users": users, "users_default": 0, "events_default": 0,
                                  "invite": 100, "kick": 100, "ban": 100, "state_default": 100},
        )
        await self.bot.ensure_joined(room_id)
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
            event_id = await self._post_welcome(merchant, channel)
            await store.set_welcome_event(self.db, channel.room_id, event_id)
            channel = await store.get_channel(self.db, channel.room_id) or channel
        return channel

    async def _create_channel(self, merchant: store.Merchant) -> store.Channel:
        intent = self.intent_for(merchant.mxid)
        alias = self.channel_alias(merchant.slug)
        try:
            room_id = (await intent.resolve_room_alias(alias)).room_id
            log.info("channel.adopted", slug=merchant.slug, room_id=room_id)
        except MNotFound:
            room_id = await intent.create_room(
                alias_localpart=alias[1:].split(":", 1)[0],
                visibility=RoomDirectoryVisibility.PUBLIC,
                preset=RoomCreatePreset.PUBLIC,
                name=merchant.name,
                topic=channels.channel_topic(merchant.name, merchant.description),
                power_level_override=self._power_levels(merchant.mxid),
                initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                                "content": {"history_visibility": "world_readable"}}],
            )
            log.info("channel.created", slug=merchant.slug, room_id=room_id, alias=alias)
        await self.bot.ensure_joined(room_id)
        channel = store.Channel(room_id=room_id, merchant_slug=merchant.slug, alias=alias,
                                name=merchant.name, is_primary=True, welcome_event_id=None)
        await store.insert_channel(self.db, channel)
        return channel

    async def _post_welcome(self, merchant: store.Merchant, channel: store.Channel) -> str:
        values = {"shop_name": merchant.name, "shop_mxid": merchant.mxid}
        content = TextMessageEventContent(
            msgtype=MessageType.TEXT,
            body=TEMPLATES.get_template("welcome.txt.j2").render(values),
            format=Format.HTML,
            formatted_body=sanitize_html(
                TEMPLATES.get_template("welcome.html.j2").render(values)),
        )
        # A txnId derived from the room: a retry after a crash is deduplicated by Synapse.
        event_id = await self.intent_for(merchant.mxid).send_message_event(
            channel.room_id, EventType.ROOM_MESSAGE, content,
            txn_id=f"mercato.welcome.{channel.room_id}")
        log.info("channel.welcome_posted", slug=merchant.slug, event_id=event_id)
        return event_id

    # -- Matrix events -------------------------------------------------------------------

    async def handle_event(self, event: MatrixEvent, raw: dict[str, Any]) -> None:
        if await self.accept_invite_if_for_bot(event):
            return
        if await self.support.handle_event(event, raw):
            return
        if event.type == EventType.ROOM_MEMBER and isinstance(event, StateEvent):
            await self._track_follower(event)

    async def _track_follower(self, event: StateEvent) -> None:
        channel = await store.get_channel(self.db, event.room_id)
        if channel is None:
            return
        user_id = event.state_key
        if user_id == self.bot_mxid or self.is_shop_user(user_id):
            return
        if event.content.membership == Membership.JOIN:
            await store.add_follower(self.db, channel.room_id, user_id)
            log.info("channel.followed", room_id=channel.room_id, user_id=user_id)
        elif event.content.membership in (Membership.LEAVE, Membership.BAN):
            await store.remove_follower(self.db, channel.room_id, user_id)
            log.info("channel.unfollowed", room_id=channel.room_id, user_id=user_id)

    async def query_user(self, user_id: UserID) -> bool:
        # Shop users exist only once a shop is approved; nobody can conjure one by lookup.
        return False
