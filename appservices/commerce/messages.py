"""What commerce writes down when one of its messages has been sent.

Every message the commerce appservice sends goes through the core outbox
(mercato/matrix/outbox.py): recorded first, sent once, in each room's order. What a
sent message means to the shop — a coupon's DM delivered, a channel welcomed, a card
to keep up to date, a buyer's message relayed — is recorded here, from the message's
`kind` and `subject` columns, when the outbox has its event ID. Each hook may run twice
(the process stopped between the hook and the outbox's own record), so each is
idempotent.
"""

from __future__ import annotations

import json
from typing import Any

from appservices.commerce.campaigns import storage as campaign_rows
from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.shops import storage as store
from appservices.commerce.support import storage as support
from mercato.db import Database
from mercato.matrix.outbox import Outbox, Outgoing

# The kinds of message commerce sends (the outbox's `kind` column and metric label).
CAMPAIGN_POST = "campaign_post"
WELCOME = "welcome"
CARD_SHARE = "card_share"
CARD_EDIT = "card_edit"
SUPPORT_THREAD = "support_thread"
SUPPORT_RELAY = "support_relay"
SUPPORT_NOTICE = "support_notice"
AUTO_REPLY = "auto_reply"
COUPON_CODE = "coupon_code"
PRICE_ALERT = "price_alert"
DIRECT = "direct"
PREVIEW = "preview"


def relay_subject(source_event_id: str, dm_room_id: str, direction: str) -> str:
    return json.dumps({"source": source_event_id, "dm_room_id": dm_room_id,
                       "direction": direction})


class SentMessages:
    """The outbox's hooks for commerce's kinds of message."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, outbox: Outbox) -> None:
        outbox.on_sent(COUPON_CODE, self.coupon_code_sent)
        outbox.on_sent(WELCOME, self.welcome_sent)
        outbox.on_sent(CARD_SHARE, self.card_sent)
        outbox.on_sent(SUPPORT_THREAD, self.thread_opened)
        outbox.on_sent(SUPPORT_RELAY, self.relayed)

    async def coupon_code_sent(self, message: Outgoing, event_id: str) -> None:
        if message.subject:
            await campaign_rows.set_code_dm(self.db, message.subject, message.room_id, event_id)

    async def welcome_sent(self, message: Outgoing, event_id: str) -> None:
        await store.set_welcome_event(self.db, message.room_id, event_id)

    async def card_sent(self, message: Outgoing, event_id: str) -> None:
        card: dict[str, Any] = message.content.get(products.PRODUCT_KEY) or {}
        await product_rows.record_shared_card(
            self.db, event_id, message.room_id, str(card.get("shop_slug")), str(card.get("sku")),
            str(card.get("price")), str(card.get("stock")))

    async def thread_opened(self, message: Outgoing, event_id: str) -> None:
        if message.subject:
            await support.set_thread_root(self.db, message.subject, event_id)

    async def relayed(self, message: Outgoing, event_id: str) -> None:
        if message.subject:
            relay = json.loads(message.subject)
            await support.record_relay(self.db, relay["source"], event_id, relay["dm_room_id"],
                                       relay["direction"])
