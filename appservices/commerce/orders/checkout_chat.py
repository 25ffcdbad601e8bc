"""The checkout dialog's reading and writing: the draft row, the shop's questions and
the order placed on `confirm` (the rules of the dialog are `checkout_dialog.py`).

Each answer is applied and its question recorded in one transaction, with the answer's
event ID in the draft: an answer handled twice (after a crash) is applied once and
asked once. `confirm` notes when it started placing; handled again, it looks for the
order placed since before placing another. Address and phone live in the draft row
only until the order is placed or the checkout dropped, and are never logged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from appservices.commerce.errors import CommerceError
from appservices.commerce.orders import carts, chat_replies
from appservices.commerce.orders import chat_storage as chat_rows
from appservices.commerce.orders import operations as orders
from appservices.commerce.orders import settings as order_settings
from appservices.commerce.orders.checkout_dialog import (
    Answered,
    Draft,
    Options,
    Step,
    answer,
    delivery_of,
    filled,
    forget_field,
    is_confirm,
    is_stop,
    next_step,
    question,
    summary,
)
from appservices.commerce.orders.operations import OrdersMatrix
from appservices.commerce.shops import storage as store
from mercato.commands import Reply
from mercato.db import Database, transaction
from mercato.logging import get_logger
from mercato.matrix.retrying import now_ms

log = get_logger(__name__)

DRAFT_LIFETIME_MS = 24 * 3600 * 1000  # a checkout left this long is dropped
FIXABLE = ("coupon", "payment", "delivery")  # refusals the dialog asks again about


async def in_progress(db: Database, room_id: str) -> bool:
    draft = await chat_rows.get_draft(db, room_id)
    if draft is not None and draft.updated_at < now_ms() - DRAFT_LIFETIME_MS:
        await chat_rows.delete_draft(db, room_id)
        log.info("checkout.expired", shop=draft.merchant_slug)
        return False
    return draft is not None


async def _options(db: Database, slug: str) -> Options:
    return Options.of(await order_settings.checkout_options(db, slug))


async def start(db: Database, merchant: store.Merchant, room_id: str, buyer_id: str,
                event_id: str) -> Reply:
    """`checkout`: a new draft for what is in the cart, and the first question."""
    quote = await carts.checkout_quote(db, buyer_id, merchant.slug)
    options = await _options(db, merchant.slug)
    now = now_ms()
    draft = filled(Draft(room_id, merchant.slug, buyer_id, last_event_id=event_id,
                         created_at=now, updated_at=now), options)
    await chat_rows.put_draft(db, draft)
    log.info("checkout.started", shop=merchant.slug)
    count = sum(i["quantity"] for i in quote["items"])
    lead = (f"Checkout at {merchant.name}: {count} item{'s' if count != 1 else ''}, "
            f"{quote['subtotal']} {quote['currency']}.")
    asked = await _ask(db, draft, options)
    return Reply(f"{lead}\n{asked.text}", f"<p>{lead}</p>{asked.html or ''}")


async def _ask(db: Database, draft: Draft, options: Options,
               problem: str | None = None) -> Reply:
    """The next question, or the summary once everything is answered."""
    if next_step(draft) == Step.CONFIRM:
        quote = await carts.checkout_quote(db, draft.buyer_id, draft.merchant_slug,
                                            draft.coupon_code or None)
        shown = summary(draft, options, quote)
        if problem:
            return Reply(f"{problem}\n{shown.text}", f"<p>{problem}</p>{shown.html}")
        return shown
    return question(draft, options, problem)


async def handle_answer(db: Database, matrix: OrdersMatrix, merchant: store.Merchant,
                        room_id: str, buyer_id: str, event_id: str, body: str) -> None:
    """The buyer's message while a checkout is in progress: an answer, `cancel` or
    `confirm`."""
    draft = await chat_rows.get_draft(db, room_id)
    if draft is None or draft.buyer_id != buyer_id:
        return
    if draft.placing_at is not None:
        if draft.last_event_id == event_id or await _placed_since(db, draft):
            await _place(db, matrix, merchant, draft, event_id)  # finish what was started
            return
        draft = replace(draft, placing_at=None)  # that try failed; this is a new answer
    elif draft.last_event_id == event_id:
        return  # handled already: its answer was recorded with it
    if is_stop(body):
        await _drop(db, matrix, merchant, draft, event_id,
                    Reply("Checkout stopped; nothing was ordered. Your cart is kept: type "
                          "cart to see it, checkout to start again."))
        return
    try:
        options = await _options(db, merchant.slug)
        if next_step(draft) == Step.CONFIRM and is_confirm(body):
            await _place(db, matrix, merchant, draft, event_id)
            return
        answered = await _answered(db, draft, options, body)
        new = replace(answered.draft, last_event_id=event_id, updated_at=now_ms())
        reply = await _ask(db, new, options, answered.problem)
    except CommerceError as e:  # the shop stopped taking orders, the cart emptied …
        await _drop(db, matrix, merchant, draft, event_id, Reply(
            f"Sorry: {e.message}\nThe checkout is stopped; nothing was ordered."))
        return
    async with transaction(db) as conn:
        await chat_rows.put_draft(conn, new)
        await chat_replies.record(conn, matrix, merchant, room_id, event_id, reply)
    matrix.wake_messages()


async def _answered(db: Database, draft: Draft, options: Options, body: str) -> Answered:
    step = next_step(draft)
    if step == Step.CONFIRM:
        return Answered(draft, "To order, type confirm; to stop, type cancel.")
    answered = answer(draft, options, body)
    if answered.problem is None and step == Step.COUPON and answered.draft.coupon_code:
        try:
            await carts.checkout_quote(db, draft.buyer_id, draft.merchant_slug,
                                        answered.draft.coupon_code)
        except CommerceError as e:
            reason = getattr(e, "reason", e.message)
            return Answered(draft, f"That code cannot be used here: {reason}.")
    return answered


async def _drop(db: Database, matrix: OrdersMatrix, merchant: store.Merchant, draft: Draft,
                event_id: str, reply: Reply) -> None:
    async with transaction(db) as conn:
        await chat_rows.delete_draft(conn, draft.dm_room_id)
        await chat_replies.record(conn, matrix, merchant, draft.dm_room_id, event_id, reply)
    matrix.wake_messages()
    log.info("checkout.dropped", shop=merchant.slug)


async def _placed_since(db: Database, draft: Draft) -> str | None:
    placed = await chat_rows.orders_placed_since(db, draft.buyer_id, draft.merchant_slug,
                                                 draft.placing_at or 0)
    return placed[-1] if placed else None


async def _place(db: Database, matrix: OrdersMatrix, merchant: store.Merchant, draft: Draft,
                 event_id: str) -> None:
    """`confirm`: place the order from the cart; the spine sends its card to this DM."""
    order_id = await _placed_since(db, draft) if draft.placing_at is not None else None
    if order_id is None:
        draft = replace(draft, placing_at=now_ms(), last_event_id=event_id,
                        updated_at=now_ms())
        await chat_rows.put_draft(db, draft)
        try:
            order = await orders.place_order(db, matrix, draft.buyer_id, _order_body(draft))
        except CommerceError as e:
            await _refused(db, matrix, merchant, draft, event_id, e)
            return
        order_id = order.id
    await _drop(db, matrix, merchant, draft, event_id, Reply(
        f"Thank you! Order {order_id} is placed. Its card here shows every change; type "
        f"order {order_id} to see it, cancel {order_id} to cancel it before it ships."))
    log.info("checkout.placed", shop=merchant.slug, order=order_id)


def _order_body(draft: Draft) -> dict[str, Any]:
    return {"shop": draft.merchant_slug, "from_cart": True, "delivery": delivery_of(draft),
            "payment": draft.payment_method, "coupon": draft.coupon_code or None}


async def _refused(db: Database, matrix: OrdersMatrix, merchant: store.Merchant, draft: Draft,
                   event_id: str, error: CommerceError) -> None:
    """The order was not placed: ask again about what can be fixed here, or stop."""
    field = str(getattr(error, "field", ""))
    if not field.startswith(FIXABLE):
        await _drop(db, matrix, merchant, draft, event_id, Reply(
            f"Sorry: {error.message}\nNothing was ordered and your cart is as it was: change "
            "it (cart, cart remove <sku>, buy <sku> <quantity>) and type checkout again."))
        return
    options = await _options(db, merchant.slug)
    new = replace(forget_field(draft, field), placing_at=None, updated_at=now_ms())
    reply = await _ask(db, new, options, f"Sorry: {getattr(error, 'reason', error.message)}.")
    async with transaction(db) as conn:
        await chat_rows.put_draft(conn, new)
        await chat_replies.record(conn, matrix, merchant, draft.dm_room_id, event_id, reply)
    matrix.wake_messages()
