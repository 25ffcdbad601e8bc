"""Card edits that failed their first try, retried in each room's order, with backoff,
looking in the room first, and parked after their last try (cards.py records and first
tries them; worker.py runs a pass of this with campaign delivery).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from appservices.commerce.catalog import cards as card_edits
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.shops import storage as store

if TYPE_CHECKING:
    from appservices.commerce.matrix import CommerceMatrix

CONCURRENT_ROOMS = 8


def _now() -> int:
    return int(time.time() * 1000)


class CardEditDelivery:
    def __init__(self, service: CommerceMatrix) -> None:
        self.service = service
        self.db = service.db

    async def run_pass(self) -> None:
        """Card edits that failed their first try (cards.py), retried like posts."""
        pending = await product_rows.pending_card_edits(self.db)
        limit = asyncio.Semaphore(CONCURRENT_ROOMS)
        by_room: dict[str, list[product_rows.CardEdit]] = {}
        for edit in pending:
            by_room.setdefault(edit.room_id, []).append(edit)

        async def room_worker(room_edits: list[product_rows.CardEdit]) -> None:
            async with limit:
                for edit in room_edits:  # one room's edits keep their order
                    if edit.next_attempt_at > _now() or \
                            await self.send_card_edit(edit) == "pending":
                        break

        await asyncio.gather(*(room_worker(e) for e in by_room.values()))

    async def send_card_edit(self, edit: product_rows.CardEdit) -> str:
        merchant = await store.get_merchant(self.db, store.MerchantSlug(edit.merchant_slug))
        if merchant is None or merchant.status != "approved":
            # A suspended shop edits nothing; the edit waits for reinstatement.
            await product_rows.postpone_card_edit(self.db, edit.id, "shop is not active",
                                                  _now() + 60_000)
            return "pending"
        product = await product_rows.get_product(self.db, edit.merchant_slug, edit.sku)
        if product is None:
            await product_rows.drop_card_edit(self.db, edit.id, "the product was deleted")
            return "superseded"
        return await card_edits.send_edit(self.db, self.service, merchant, product,
                                          catalog.card_for(self.service, merchant, product),
                                          edit)
