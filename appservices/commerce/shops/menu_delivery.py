"""The Matrix side of shop menus: one menu message in each buyer's DM with a shop and one
storefront link in its channel, each sent once through the outbox, pinned by the shop
(`m.room.pinned_events`), and edited in place (m.replace) when what it shows changes.
The channel also carries the storefront as a widget (`im.vector.modular.widgets`).

Idempotent throughout: a room's menu is a `pinned_menu` row written in the transaction
that records its message (txnId `mercato.menu.<room>`), so a replayed event or a restart
sends nothing twice; an edit's txnId names the menu's version, and a newer edit takes the
place of one still waiting. What the menu shows is rules in menu.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mautrix.api import Method
from mautrix.errors import MatrixRequestError, MForbidden, MNotFound
from mautrix.types import EventType, RoomID, UserID

from appservices.commerce.shops import menu
from appservices.commerce.shops import menu_storage as rows
from appservices.commerce.shops import storage as store
from appservices.commerce.support import storage as support
from mercato.db import transaction
from mercato.logging import get_logger
from mercato.matrix.outbox import Message, Outbox, Outgoing
from mercato.matrix.paths import matrix_path

if TYPE_CHECKING:
    from appservices.commerce.service import CommerceAppService

log = get_logger(__name__)

MENU = "menu"  # the outbox kinds: the menu message, and an edit of it
MENU_EDIT = "menu_edit"
PINNED = EventType.find(menu.PINNED_EVENT, EventType.Class.STATE)
WIDGET = EventType.find(menu.WIDGET_EVENT, EventType.Class.STATE)
WIDGET_LAYOUT = EventType.find(menu.WIDGET_LAYOUT_EVENT, EventType.Class.STATE)


def orders_page_url(site_url: str) -> str:
    """The buyer's orders on the web, at every shop (web/storefront_orders.py)."""
    return f"{site_url.rstrip('/')}/orders"


class ShopMenus:
    def __init__(self, service: CommerceAppService) -> None:
        self.service = service
        self.db = service.db

    def register(self, outbox: Outbox) -> None:
        outbox.on_sent(MENU, self._menu_sent)

    # -- what the menu shows now ---------------------------------------------------------------

    async def current(self, merchant: store.Merchant) -> tuple[menu.Menu, int]:
        """The shop's menu and its version (a new version when what it shows changed)."""
        row = await rows.shop_menu(self.db, merchant.slug)
        extra = menu.links_from_json(row.links) if row else ()
        site = self.service.public_url
        shown = menu.Menu(slug=merchant.slug, shop_name=merchant.name,
                          verified=merchant.verified,
                          storefront_url=menu.storefront_url(site, merchant.slug),
                          orders_url=orders_page_url(site), extra=extra)
        fingerprint = menu.digest(shown)
        if row is not None and row.digest == fingerprint:
            return shown, row.version
        version = row.version + 1 if row else 1
        await rows.put_shop_menu(self.db, merchant.slug, menu.links_json(extra), version,
                                 fingerprint)
        return shown, version

    async def set_links(self, merchant: store.Merchant, extra: tuple[menu.MenuLink, ...]) -> int:
        """The shop's own links changed: store them, and edit every menu already sent."""
        row = await rows.shop_menu(self.db, merchant.slug)
        await rows.put_shop_menu(self.db, merchant.slug, menu.links_json(extra),
                                 row.version if row else 0, "")
        return await self.shop_changed(merchant)

    # -- a buyer's DM ----------------------------------------------------------------------------

    async def on_join(self, room_id: str, user_id: str) -> None:
        """Someone joined a room: in a buyer's DM with a shop, once both are in, the menu."""
        thread = await support.thread_for_dm(self.db, room_id)
        if thread is None or await rows.get_pinned(self.db, room_id) is not None:
            return
        merchant = await store.get_merchant(self.db, thread.merchant_slug)
        if merchant is None:
            return
        if user_id == thread.buyer_id or (
                user_id == merchant.mxid
                and await self._membership(merchant, room_id, thread.buyer_id) == "join"):
            await self.ensure_dm(merchant, room_id)

    async def ensure_dm(self, merchant: store.Merchant, room_id: str) -> None:
        """The DM's menu message, recorded once (nothing if the DM has one)."""
        if merchant.status != "approved" or await rows.get_pinned(self.db, room_id):
            return
        shown, version = await self.current(merchant)
        await self._record_menu(merchant, room_id, "dm",
                                menu.dm_menu_content(shown, version))

    async def _membership(self, merchant: store.Merchant, room_id: str,
                          user_id: str) -> str | None:
        try:
            member = await self.service.intent_for(merchant.mxid).api.request(
                Method.GET, matrix_path("client", "v3", "rooms", room_id, "state",
                                        "m.room.member", user_id))
        except MNotFound:
            return None
        return member.get("membership")

    # -- the channel ---------------------------------------------------------------------------

    async def ensure_channel(self, merchant: store.Merchant) -> None:
        """The primary channel's storefront widget and pinned storefront link."""
        channel = next((c for c in await store.channels_of(self.db, merchant.slug)
                        if c.is_primary), None)
        if channel is None or merchant.status != "approved":
            return
        shown, version = await self.current(merchant)
        widget = menu.widget_content(shown, self.service.public_url, merchant.mxid)
        await self._put_state(merchant, channel.room_id, WIDGET, menu.WIDGET_ID, widget)
        await self._put_state(merchant, channel.room_id, WIDGET_LAYOUT, "",
                              menu.widget_layout(), only_if_missing=True)
        if await rows.get_pinned(self.db, channel.room_id) is None:
            await self._record_menu(merchant, channel.room_id, "channel",
                                    menu.channel_content(shown, version))

    async def _put_state(self, merchant: store.Merchant, room_id: str, event_type: EventType,
                         state_key: str, content: dict[str, Any], *,
                         only_if_missing: bool = False) -> None:
        intent = self.service.intent_for(merchant.mxid)
        try:
            have = await intent.api.request(Method.GET, matrix_path(
                "client", "v3", "rooms", room_id, "state", str(event_type), state_key))
        except MNotFound:
            have = None
        if have == content or (only_if_missing and have):
            return  # a state event sent again is a new event in the room's history
        await intent.send_state_event(RoomID(room_id), event_type, content,
                                      state_key=state_key)

    # -- sending, pinning, editing ----------------------------------------------------------------

    async def _record_menu(self, merchant: store.Merchant, room_id: str, kind: str,
                           content: dict[str, Any]) -> None:
        message = Message(txn_id=f"mercato.menu.{room_id}", room_id=room_id,
                          sender=merchant.mxid, content=content, kind=MENU, subject=room_id)
        async with transaction(self.db) as conn:
            if not await rows.add_pinned(conn, room_id, merchant.slug, kind):
                return
            await self.service.messages.record(message, conn)
        self.service.messages.wake()
        log.info("menu.recorded", shop=merchant.slug, room_id=room_id, kind=kind)

    async def _menu_sent(self, message: Outgoing, event_id: str) -> None:
        """The outbox sent a menu: write it down, pin it, and catch up with a change made
        while it waited."""
        version = int((message.content.get(menu.MENU_KEY) or {}).get("version", 0))
        await rows.set_sent(self.db, message.room_id, event_id, version)
        await self._pin(message.sender, message.room_id, event_id)
        merchant = await store.get_merchant_by_mxid(self.db, message.sender)
        if merchant is not None:
            await self.shop_changed(merchant, channel_too=False)

    async def _pin(self, shop: str, room_id: str, event_id: str) -> None:
        intent = self.service.intent_for(UserID(shop))
        state: list[dict[str, Any]] = await intent.api.request(  # type: ignore[assignment]
            Method.GET, matrix_path("client", "v3", "rooms", room_id, "state"))
        if not menu.can_pin(state, shop):
            # A DM the buyer made without giving the shop power: the menu stays unpinned.
            await rows.set_pinned(self.db, room_id, "not_allowed")
            log.info("menu.not_pinned", room_id=room_id, reason="power level")
            return
        current = next((e.get("content", {}).get("pinned") for e in state
                        if e.get("type") == menu.PINNED_EVENT), None)
        pinned = menu.pinned_with(current, event_id)
        try:
            if pinned is not None:
                content: dict[str, Any] = {"pinned": pinned}
                await intent.send_state_event(RoomID(room_id), PINNED, content, state_key="")
        except MForbidden:
            await rows.set_pinned(self.db, room_id, "not_allowed")
            log.info("menu.not_pinned", room_id=room_id, reason="refused")
            return
        await rows.set_pinned(self.db, room_id, "yes")

    async def shop_changed(self, merchant: store.Merchant, *, channel_too: bool = True) -> int:
        """What the menu shows may have changed (name, links, the site's address): edit each
        menu message that shows an older version; returns how many edits were recorded."""
        if channel_too:
            await self.ensure_channel(merchant)
        shown, version = await self.current(merchant)
        edits = 0
        while stale := await rows.behind(self.db, merchant.slug, version, limit=500):
            for row in stale:
                await self._record_edit(merchant, row, shown, version)
                edits += 1
        if edits:
            self.service.messages.wake()
            log.info("menu.edited", shop=merchant.slug, version=version, rooms=edits)
        return edits

    async def _record_edit(self, merchant: store.Merchant, row: rows.PinnedMenu,
                           shown: menu.Menu, version: int) -> None:
        if row.event_id is None:
            return  # not sent yet: its hook catches up once it is
        content = menu.edit_content(row.event_id, menu.content_for(row.kind, shown, version))
        message = Message(txn_id=f"mercato.menu.edit.{row.event_id}.v{version}",
                          room_id=row.room_id, sender=merchant.mxid, content=content,
                          kind=MENU_EDIT, subject=row.event_id)
        async with transaction(self.db) as conn:
            # An edit still waiting shows an older menu: this one takes its place.
            await self.service.messages.replace_pending(message, conn)
            await rows.set_version(conn, row.room_id, version)

    async def reconcile(self) -> None:
        """At start-up: every open shop's channel carries the widget and the pinned link,
        and every menu shows what the shop shows now (changes made while down)."""
        for merchant in await store.list_merchants(self.db, "approved"):
            try:
                await self.shop_changed(merchant)
            except MatrixRequestError as e:
                log.warning("menu.reconcile_failed", shop=merchant.slug, error=str(e))
