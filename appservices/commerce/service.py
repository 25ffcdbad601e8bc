"""The commerce appservice process: shops as Matrix users, their channels, the API."""

from __future__ import annotations

from pathlib import Path

from mautrix.errors import MNotFound
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
from mautrix.types import Event as MatrixEvent

from appservices.commerce import channels
from appservices.commerce.api import add_api_routes
from appservices.commerce.db import store
from appservices.commerce.db.upgrade import upgrade_table
from mercato.config import MercatoConfig
from mercato.logging import get_logger
from mercato.matrix.appservice import MercatoAppService
from mercato.matrix.html import sanitize_html
from mercato.templates import template_environment
from mercato.types import MerchantSlug

log = get_logger(__name__)

TEMPLATES = template_environment(Path(__file__).parent / "templates")


class CommerceAppService(MercatoAppService):
    name = "commerce"

    def __init__(self, config: MercatoConfig) -> None:
        super().__init__(config, config.commerce, upgrade_table)
        self.room_version = ""
        add_api_routes(self.app, self.db, config)

    def shop_mxid(self, slug: str) -> UserID:
        return UserID(self.config.user_id(f"{self.config.commerce.user_prefix}{slug}"))

    def channel_alias(self, slug: str) -> RoomAlias:
        localpart = channels.channel_alias_localpart(self.config.commerce.user_prefix, slug)
        return RoomAlias(f"#{localpart}:{self.config.server_name}")

    async def on_start(self) -> None:
        capabilities = await self.bot.api.request("GET", "/_matrix/client/v3/capabilities")
        self.room_version = capabilities["capabilities"]["m.room_versions"]["default"]
        demo = self.config.demo
        if demo.enabled:
            merchant = await self.ensure_merchant(
                MerchantSlug(demo.shop_slug), demo.shop_name,
                owner=UserID(self.config.user_id(demo.merchant.localpart)),
                description="A shop to try Mercato with.")
            await store.store_api_key(self.db, merchant.slug, demo.api_key, "demo")
            await self.ensure_primary_channel(merchant)

    # -- shops and channels --------------------------------------------------------------

    async def ensure_merchant(self, slug: MerchantSlug, name: str, *, owner: UserID,
                              description: str = "", website: str = "") -> store.Merchant:
        """Create the shop's Matrix user and its row; safe to call again."""
        mxid = self.shop_mxid(slug)
        intent = self.intent_for(mxid)
        await intent.ensure_registered()
        await intent.set_displayname(name)
        merchant = await store.get_merchant(self.db, slug)
        if merchant is None:
            merchant = store.Merchant(slug=slug, name=name, description=description,
                                      website=website, mxid=mxid, owner_mxid=owner,
                                      status="approved", created_at=store.now_ms())
            await store.insert_merchant(self.db, merchant)
            log.info("merchant.created", slug=slug, mxid=mxid)
        return merchant

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
                power_level_override=channels.channel_power_levels(
                    merchant.mxid, self.bot_mxid,
                    creator_in_users=not channels.room_version_has_privileged_creators(
                        self.room_version)),
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

    async def handle_event(self, event: MatrixEvent) -> None:
        if await self.accept_invite_if_for_bot(event):
            return
        if event.type == EventType.ROOM_MEMBER and isinstance(event, StateEvent):
            await self._track_follower(event)

    async def _track_follower(self, event: StateEvent) -> None:
        channel = await store.get_channel(self.db, event.room_id)
        if channel is None:
            return
        user_id = event.state_key
        if user_id == self.bot_mxid or user_id.startswith(
                f"@{self.config.commerce.user_prefix}"):
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
