"""Live card edits: a posted card shows the product's price and stock of now, even after a failure.

A price or stock change edits every card the shop posted (`m.replace`). Each edit is a
`card_edit` row (the shop's record: its stats read it) and, in the same transaction, a
message in the core outbox (mercato/matrix/outbox.py) that takes the place of an older
edit of the same card still waiting. The outbox sends it in the room's order, renders
the card of the moment it is sent, holds it while the shop is suspended and drops it if
the product was deleted (card_delivery.py has those hooks); a try the homeserver refuses
or never answers (the shop was removed from the room or may no longer post there,
Synapse restarts) is logged at warning, counted in the shop's stats and in
`mercato_card_edits_total`, retried with backoff and parked after the outbox's last try.
A card an older Mercato stored under a room alias is moved to the room's ID when it is
next edited.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import Counter

from appservices.commerce.catalog import storage as rows
from appservices.commerce.catalog.products import Product
from appservices.commerce.circle import edits as circle_edits
from appservices.commerce.shops import storage as store
from mercato.db import Connection, Database, transaction
from mercato.logging import get_logger

log = get_logger(__name__)

CARD_EDITS = Counter("mercato_card_edits_total",
                     "Edits of posted product cards, by outcome: sent, retrying (a try failed"
                     " and the outbox tries again), given_up (parked after the last try)",
                     ["outcome"])


class CardEditMatrix(Protocol):
    async def queue_card_edit(self, merchant: store.Merchant, room_id: str,
                              card_event_id: str, txn_id: str, conn: Connection) -> None: ...

    def wake_messages(self) -> None: ...


async def refresh_cards(db: Database, matrix: CardEditMatrix, merchant: store.Merchant,
                        product: Product) -> int:
    """Queue an edit of every card of this product that shows other facts; how many."""
    # Buyers' recommendations of it in their circle rooms show the card too.
    await circle_edits.refresh_recommendations(db, matrix, product)
    stale = [c for c in await rows.cards_of(db, merchant.slug, product.sku)
             if (c["price"], c["stock"]) != (product.price, product.stock)]
    if not stale:
        return 0
    async with transaction(db) as conn:
        edits = await rows.record_card_edits(conn, stale, merchant.slug, product.sku)
        for edit in edits:
            await matrix.queue_card_edit(merchant, edit.room_id, edit.card_event_id,
                                         edit.txn_id, conn)
    matrix.wake_messages()
    log.info("cards.refreshed", shop=merchant.slug, sku=product.sku, queued=len(edits))
    return len(edits)


async def card_stats(db: Database, slug: str) -> dict[str, int]:
    """The shop's shared cards and how their edits went, for its stats."""
    return await rows.card_stats(db, slug)
