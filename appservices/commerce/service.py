"""The commerce appservice process: builds its parts, mounts the HTTP API and routes the
Matrix events it is sent to the feature that handles them.

The Matrix side of the features' ports is `matrix.py`; what a follower's membership,
reaction or read receipt does is `events.py`; customer service is `support/desk.py`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mautrix.api import Method
from mautrix.types import Event as MatrixEvent
from mautrix.types import EventType, Membership, StateEvent, UserID

from appservices.commerce import events, messages
from appservices.commerce.api import add_api_routes
from appservices.commerce.campaigns import rules as campaign_rules
from appservices.commerce.catalog.card_delivery import CardEditDelivery
from appservices.commerce.circle import events as circle_events
from appservices.commerce.circle.rooms import CircleRooms
from appservices.commerce.config import CommerceConfig
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.directory import ShopDirectory
from appservices.commerce.http import ApiContext
from appservices.commerce.matrix import CommerceMatrix
from appservices.commerce.orders.messages import OrderMessages
from appservices.commerce.shops import menu_commands as _menu_commands  # noqa: F401 (registers)
from appservices.commerce.shops import operations as merchants
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.menu_delivery import ShopMenus
from appservices.commerce.support.desk import SupportDesk
from appservices.commerce.web import circle_page, follow_pages
from appservices.commerce.web.console_routes import add_console_routes
from appservices.commerce.web.dm import LinkSender
from appservices.commerce.web.signin import add_signin_routes
from appservices.commerce.web.storefront_routes import add_storefront_routes
from appservices.commerce.webhooks.outbox import WebhookOutbox
from appservices.commerce.worker import DeliveryWorker
from mercato.config import MercatoConfig
from mercato.matrix.outbox import Outbox as MessageOutbox
from mercato.matrix.paths import matrix_path
from mercato.types import MerchantSlug


class CommerceAppService(CommerceMatrix):
    name = "commerce"

    def __init__(self, config: MercatoConfig) -> None:
        settings = CommerceConfig.of(config)
        super().__init__(config, settings, upgrade_table)
        self.room_version = ""
        self.support = SupportDesk(self)
        self.directory = ShopDirectory(self)
        self.delivery = DeliveryWorker(self)
        # Every message the shops and the bot send: recorded first, sent once, in order.
        self.messages = MessageOutbox(self.db, self.name,
                                      lambda mxid: self.intent_for(UserID(mxid)))
        # Every event a shop's back-end hears of: recorded first, POSTed until it arrives.
        self.webhooks = WebhookOutbox(self.db, ca_file=settings.webhook_ca_file)
        messages.SentMessages(self.db).register(self.messages)
        OrderMessages(self.db).register(self.messages)
        self.delivery.campaigns.register(self.messages)
        CardEditDelivery(self).register(self.messages)
        # Circle rooms and Spaces; recommendations and their edits go through the outbox.
        self.circle = CircleRooms(self)
        self.circle.register(self.messages)
        # The menu pinned in each buyer's DM and the channel's storefront link and widget.
        self.menus = ShopMenus(self)
        self.menus.register(self.messages)
        self.public_url = settings.site_url
        host = urlsplit(self.public_url).hostname
        # Posts may link to Mercato's own pages (product pages) besides a shop's site.
        self.mercato_hosts: tuple[str, ...] = (host,) if host else ()
        add_api_routes(self.app, ApiContext(db=self.db, config=settings, matrix=self))
        follow_pages.add_page_routes(self.app)
        # The web pages' sign-in with Matrix, sessions, page shell and static files.
        add_signin_routes(self.app, config, LinkSender(self))
        add_storefront_routes(self.app)  # the shop, product pages, cart and checkout
        add_console_routes(self.app)  # the merchant console at /console/
        circle_page.add_routes(self.app)  # the Circle as one feed at /circle

    async def on_start(self) -> None:
        self.messages.start()  # first: seeding the demo shop posts its welcome
        capabilities = await self.bot.api.request(
            Method.GET, matrix_path("client", "v3", "capabilities"))
        self.room_version = capabilities["capabilities"]["m.room_versions"]["default"]
        if self.config.demo.enabled:
            await self._seed_demo()
        await self.directory.reconcile()
        await self.menus.reconcile()
        self.delivery.start()
        self.webhooks.start()

    async def publish_shop_state(self, merchant: store.Merchant) -> None:
        await super().publish_shop_state(merchant)
        await self.menus.shop_changed(merchant)  # the name in every menu, the channel's widget

    async def stop(self) -> None:
        await self.delivery.stop()
        await self.webhooks.stop()
        await super().stop()
        await self.messages.stop()  # after the inbox: its handlers record messages

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
        await store.insert_api_key(self.db, slug, demo.api_key, key_id="demo", label="demo",
                                   role="owner", created_by="demo-seed")

    # -- Matrix events -------------------------------------------------------------------

    async def handle_event(self, event: MatrixEvent, raw: dict[str, Any]) -> None:
        if await self.accept_invite_if_for_bot(event):
            return
        if await self.support.handle_event(event, raw):
            return
        if event.type == EventType.ROOM_MEMBER and isinstance(event, StateEvent):
            if event.content.membership == Membership.JOIN:
                # DMs that waited for this buyer's join go out now, in order.
                await self.messages.release(event.room_id, str(event.state_key))
                # A buyer's DM with a shop gets its menu once both are in.
                await self.menus.on_join(event.room_id, str(event.state_key))
            await events.track_follower(self, event)
            await circle_events.on_member(self, event)  # circle rooms, and Spaces on follows
        elif raw.get("type") == "m.reaction":
            await events.track_reaction(self, raw)

    def wants_ephemeral(self, raw: dict[str, Any]) -> bool:
        return raw.get("type") == "m.receipt"  # views of posts; typing and presence unused

    def inbox_queue(self, raw: dict[str, Any]) -> str | None:
        # 🎟️ claims side by side, one claimer's in order; the rest in their room's order.
        return campaign_rules.claim_queue(raw) or super().inbox_queue(raw)

    async def handle_ephemeral(self, raw: dict[str, Any]) -> None:
        await events.track_receipts(self, raw)

    async def query_user(self, user_id: UserID) -> bool:
        # Shop users exist only once a shop is approved; nobody can conjure one by lookup.
        return False
