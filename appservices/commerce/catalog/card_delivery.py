"""What a card edit means to the shop, as the outbox sends it (hooks for its `card_edit` kind).

cards.py records each edit (a `card_edit` row and an outbox message named by the row's
transaction ID, with no content of its own). When the outbox sends it, the edit carries
the card of that moment (build); a suspended shop's edits wait (held, not counted as
tries) and a deleted product's are dropped; a card an older Mercato stored under an
alias gets its room's ID and the edit is queued again there. Each failed try and the
parking are written to the row, logged and counted; once sent, the card is recorded as
showing the price and stock it was sent with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appservices.commerce import messages as message_kinds
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as rows
from appservices.commerce.catalog.cards import CARD_EDITS
from appservices.commerce.shops import storage as store
from mercato.db import transaction
from mercato.logging import get_logger
from mercato.matrix.outbox import BACKOFF, Outbox, Outgoing
from mercato.matrix.outbox_hooks import Drop, Failure, Hold
from mercato.matrix.rooms import is_alias

if TYPE_CHECKING:
    from appservices.commerce.matrix import CommerceMatrix

log = get_logger(__name__)


class CardEditDelivery:
    def __init__(self, service: CommerceMatrix) -> None:
        self.service = service
        self.db = service.db

    def register(self, outbox: Outbox) -> None:
        outbox.on_build(message_kinds.CARD_EDIT, self.build_edit)
        outbox.on_sent(message_kinds.CARD_EDIT, self.edit_sent)
        outbox.on_failed(message_kinds.CARD_EDIT, self.edit_failed)

    async def build_edit(self, message: Outgoing) -> dict[str, Any] | Hold | Drop:
        edit = await rows.card_edit_by_txn(self.db, message.txn_id)
        if edit is None:
            return Drop("no record of this card edit")
        merchant = await store.get_merchant(self.db, store.MerchantSlug(edit.merchant_slug))
        if merchant is None or merchant.status != "approved":
            return Hold("shop is not active")  # sent once it is reinstated
        product = await rows.get_product(self.db, edit.merchant_slug, edit.sku)
        if product is None:
            await rows.drop_card_edit(self.db, edit.id, "the product was deleted")
            return Drop("the product was deleted")
        if is_alias(message.room_id):
            return await self._move_to_room(merchant, edit, message.room_id)
        card = catalog.card_for(self.service, merchant, product)
        return products.edit_content(card, edit.card_event_id)

    async def _move_to_room(self, merchant: store.Merchant, edit: rows.CardEdit,
                            alias: str) -> Drop:
        """A card stored under an alias: its rows get the room's ID, the edit goes there."""
        room_id = await self.service.resolve_room(alias)  # fails the try if it cannot
        async with transaction(self.db) as conn:
            await rows.fix_card_room(conn, alias, room_id)
            await rows.drop_card_edit(conn, edit.id, f"the card's room is {room_id}")
            for moved in await rows.record_card_edits(
                    conn, [{"event_id": edit.card_event_id, "room_id": room_id}],
                    edit.merchant_slug, edit.sku):
                await self.service.queue_card_edit(merchant, room_id, moved.card_event_id,
                                                   moved.txn_id, conn)
        self.service.wake_messages()
        log.info("card.room_fixed", alias=alias, room=room_id)
        return Drop(f"the card's room is {room_id}: the edit is sent there")

    async def edit_sent(self, message: Outgoing, event_id: str) -> None:
        edit = await rows.card_edit_by_txn(self.db, message.txn_id)
        if edit is None:
            return
        shown = message.content.get("m.new_content", {}).get(products.PRODUCT_KEY) or {}
        await rows.mark_edit_sent(self.db, edit.id, event_id)
        await rows.set_card_state(self.db, edit.card_event_id, str(shown.get("price")),
                                  str(shown.get("stock")))
        CARD_EDITS.labels(outcome="sent").inc()

    async def edit_failed(self, message: Outgoing, failure: Failure) -> None:
        edit = await rows.card_edit_by_txn(self.db, message.txn_id)
        if edit is None:
            return
        await rows.mark_edit_failed_try(self.db, edit.id, failure.attempts, failure.error,
                                        BACKOFF.next_try_at(failure.attempts), failure.parked)
        CARD_EDITS.labels(outcome="given_up" if failure.parked else "retrying").inc()
        log.warning("card.edit_failed", shop=edit.merchant_slug, sku=edit.sku,
                    room=message.room_id, event_id=edit.card_event_id, error=failure.error,
                    attempt=failure.attempts, give_up=failure.parked)
