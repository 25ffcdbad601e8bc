"""The merchant directory Space: every verified, open shop's channel, browsable from any client.

The Space is a public room `#<prefix>directory:<server>` owned by the commerce bot.
A shop's primary channel is a child while the shop is approved and verified; the
child is removed (empty `m.space.child` content) when it is suspended or loses
its verification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mautrix.errors import MNotFound
from mautrix.types import (
    EventType,
    RoomAlias,
    RoomCreatePreset,
    RoomDirectoryVisibility,
    RoomID,
)

from appservices.commerce.shops import storage as store
from mercato.logging import get_logger

if TYPE_CHECKING:
    from appservices.commerce.service import CommerceAppService

log = get_logger(__name__)

DIRECTORY_SLUG = "directory"  # reserved: no shop can take it
SPACE_CHILD = EventType.find("m.space.child", EventType.Class.STATE)


def listed(merchant: store.Merchant) -> bool:
    return merchant.status == "approved" and merchant.verified


class ShopDirectory:
    def __init__(self, service: CommerceAppService) -> None:
        self.service = service
        self.room_id: RoomID | None = None

    @property
    def alias(self) -> RoomAlias:
        prefix = self.service.config.commerce.user_prefix
        return RoomAlias(f"#{prefix}{DIRECTORY_SLUG}:{self.service.config.server_name}")

    async def ensure_space(self) -> RoomID:
        bot = self.service.bot
        try:
            self.room_id = (await bot.resolve_room_alias(self.alias)).room_id
        except MNotFound:
            self.room_id = await bot.create_room(
                alias_localpart=self.alias[1:].split(":", 1)[0],
                visibility=RoomDirectoryVisibility.PUBLIC,
                preset=RoomCreatePreset.PUBLIC,
                name="Mercato shops",
                topic="Verified shops on this Mercato server. Open a shop's channel and join "
                      "it to follow the shop.",
                creation_content={"type": "m.space"},
                initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                                "content": {"history_visibility": "world_readable"}}],
                power_level_override={"events_default": 100, "state_default": 100,
                                      "invite": 100, "users_default": 0},
            )
            log.info("directory.created", room_id=self.room_id, alias=self.alias)
        await bot.set_room_directory_visibility(self.room_id, RoomDirectoryVisibility.PUBLIC)
        return self.room_id

    async def update(self, merchant: store.Merchant) -> None:
        """Add or remove the shop's primary channel to match its status and verification."""
        if self.room_id is None:
            return
        channel = next((c for c in await store.channels_of(self.service.db, merchant.slug)
                        if c.is_primary), None)
        if channel is None:
            return
        content: dict[str, Any] = (
            {"via": [self.service.config.server_name], "order": merchant.slug}
            if listed(merchant) else {})
        await self.service.bot.send_state_event(self.room_id, SPACE_CHILD, content,
                                                state_key=channel.room_id)
        log.info("directory.updated", slug=merchant.slug, listed=bool(content))

    async def reconcile(self) -> None:
        """At start-up: make the Space match the database, whatever happened while down."""
        await self.ensure_space()
        for merchant in await store.list_merchants(self.service.db):
            if merchant.status in ("approved", "suspended"):
                await self.update(merchant)
