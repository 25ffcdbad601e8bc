"""Live card edits: a posted card shows the product's price and stock of now, even after a failure.

A price or stock change edits every card the shop posted (`m.replace`). Each edit is
recorded first (a `card_edit` row), then tried at once. One the homeserver refuses or
never answers (the shop was removed from the room or may no longer post there, Synapse
restarts) is logged at warning, counted in the shop's stats and in
`mercato_card_edits_total`, and left to the outbox, which retries it with backoff in
the room's order and parks it after MAX_ATTEMPTS tries, as it does campaign posts.
A card an older Mercato stored under a room alias is moved to the room's ID when it is
next edited.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from prometheus_client import Counter

from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as rows
from appservices.commerce.catalog.products import Product
from appservices.commerce.shops import storage as store
from mercato.db import Database
from mercato.logging import get_logger
from mercato.matrix.rooms import is_alias

log = get_logger(__name__)

CARD_EDITS = Counter("mercato_card_edits_total",
                     "Edits of posted product cards, by outcome: sent, retrying (a try failed"
                     " and the outbox tries again), given_up (parked after the last try)",
                     ["outcome"])

MAX_ATTEMPTS = 10
# The outbox leaves a new edit to its immediate first try for this long.
FIRST_TRY_GRACE_MS = 30_000

State = Literal["sent", "pending", "failed"]


class CardEditMatrix(Protocol):
    async def resolve_room(self, room: str) -> str: ...

    async def edit_card(self, merchant: store.Merchant, room_id: str, event_id: str,
                        content: dict[str, Any], txn_id: str, *,
                        look_first: bool = False) -> str | None: ...


def edit_txn_id(edit_id: int) -> str:
    return f"mercato.cardedit.{edit_id}"


def retry_delay_ms(attempts: int) -> int:
    return min(300_000, 1000 * 2 ** attempts)


async def refresh_cards(db: Database, matrix: CardEditMatrix, merchant: store.Merchant,
                        product: Product, card: dict[str, Any]) -> int:
    """Edit every card of this product that shows other facts; `card` is its content now."""
    stale = [c for c in await rows.cards_of(db, merchant.slug, product.sku)
             if (c["price"], c["stock"]) != (product.price, product.stock)]
    edits = await rows.record_card_edits(db, stale, merchant.slug, product.sku,
                                         store.now_ms() + FIRST_TRY_GRACE_MS)
    edited = 0
    for edit in edits:
        if await rows.edit_waits_in_room(db, edit.room_id, edit.id):
            continue  # the outbox sends it after the room's earlier edit
        edited += await send_edit(db, matrix, merchant, product, card, edit) == "sent"
    log.info("cards.refreshed", shop=merchant.slug, sku=product.sku, edited=edited,
             waiting=len(edits) - edited)
    return edited


async def send_edit(db: Database, matrix: CardEditMatrix, merchant: store.Merchant,
                    product: Product, card: dict[str, Any], edit: rows.CardEdit) -> State:
    """Try one edit; what it is after: sent, pending (tried again later) or failed (parked)."""
    room_id = edit.room_id
    attempts = edit.attempts + 1
    try:
        if is_alias(room_id):
            room_id = await _room_of_alias(db, matrix, room_id)
        await rows.mark_edit_attempt(db, edit.id, attempts)
        event_id = await matrix.edit_card(
            merchant, room_id, edit.card_event_id,
            products.edit_content(card, edit.card_event_id), txn_id=edit_txn_id(edit.id),
            look_first=edit.attempts > 0)  # an earlier try may have reached the room
    except Exception as e:
        give_up = attempts >= MAX_ATTEMPTS
        await rows.mark_edit_retry(db, edit.id, attempts, f"{type(e).__name__}: {e}",
                                   store.now_ms() + retry_delay_ms(attempts), give_up)
        CARD_EDITS.labels(outcome="given_up" if give_up else "retrying").inc()
        log.warning("card.edit_failed", shop=merchant.slug, sku=product.sku, room=room_id,
                    event_id=edit.card_event_id, error=str(e) or type(e).__name__,
                    attempt=attempts, give_up=give_up)
        return "failed" if give_up else "pending"
    await rows.mark_edit_sent(db, edit.id, event_id or None)
    await rows.set_card_state(db, edit.card_event_id, product.price, product.stock)
    CARD_EDITS.labels(outcome="sent").inc()
    return "sent"


async def _room_of_alias(db: Database, matrix: CardEditMatrix, alias: str) -> str:
    room_id = await matrix.resolve_room(alias)
    await rows.fix_card_room(db, alias, room_id)
    log.info("card.room_fixed", alias=alias, room=room_id)
    return room_id


async def card_stats(db: Database, slug: str) -> dict[str, int]:
    """The shop's shared cards and how their edits went, for its stats."""
    return await rows.card_stats(db, slug)
