"""Ordering from any Matrix client, in the buyer's DM with the shop: the 🛒 reaction on a
product card, and the shop's commands there (`buy`, `cart`, `checkout`, `orders`, …).

The DM is the customer-service one (support/desk.py): a message that is one of these
commands, or an answer in a checkout in progress, is answered by the shop and not relayed
to the staff room; anything else is relayed as before. A word that is not a command, or
a command whose words do not fit (`cancel my order please`), is an ordinary message.

Answers go through the outbox with a transaction ID derived from the buyer's event, so
an event handled twice (the inbox replays after a crash) is answered once; a 🛒 or a
`buy` adds to the cart once (`order_chat_event`, in the cart's own transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, cast

from appservices.commerce.errors import CommerceError
from appservices.commerce.orders import carts, chat_replies, checkout_chat, rules, views
from appservices.commerce.orders import chat_storage as chat_rows
from appservices.commerce.orders import operations as orders
from appservices.commerce.orders.operations import OrdersMatrix
from appservices.commerce.shops import storage as store
from mercato.commands import (
    ArgumentError,
    CommandError,
    Context,
    Registry,
    Reply,
    UsageError,
    argument,
    integer,
    parse_command,
    strip_reply_fallback,
)
from mercato.db import Database, transaction
from mercato.logging import get_logger

log = get_logger(__name__)

CART_REACTION = "🛒"  # U+1F6D2; clients may add VS16


@dataclass(frozen=True)
class Counter:
    """The shop a buyer writes to, and what answering them needs."""

    db: Database
    matrix: OrdersMatrix
    merchant: store.Merchant


@dataclass
class BuyerContext(Context):
    """A buyer writing in their DM with a shop."""

    counter: Counter | None = None

    @property
    def shop(self) -> Counter:
        if self.counter is None:
            raise RuntimeError("a buyer's command runs at a shop's counter")
        return self.counter


def order_id(value: str) -> str:
    try:
        return rules.clean_order_id(value)
    except CommerceError:
        raise ArgumentError(f"'{value[:20]}' is not an order ID; it is six letters and "
                            "digits, like A7K3Q9") from None


registry: Registry[BuyerContext] = Registry(prefix="!", bot_name="the shop")
cart_group = registry.group("cart", help="what is in your cart at this shop", default="show")


def _refusal(error: CommerceError) -> CommandError:
    return CommandError(f"Sorry: {error.message}")


# -- the cart -----------------------------------------------------------------------------------

def cart_reply(cart: dict[str, Any], merchant: store.Merchant, lead: str = "") -> Reply:
    """The cart as the buyer reads it, with what to type next."""
    lines = [f"{i['quantity']} × {i['title']} ({i['sku']}) — {i['total']} {i['currency']}"
             for i in cart["items"]]
    if not lines:
        text = (f"{lead}\n" if lead else "") + f"Your cart at {merchant.name} is empty. " \
            "React 🛒 to one of its product cards, or type buy <sku>."
        return Reply(text.strip(), None)
    total = f"Subtotal: {cart['subtotal']} {cart['currency']}" if cart["currency"] else \
        "Items in more than one currency: order them separately."
    hint = ("Type checkout to order, cart remove <sku> to take something out, "
            "or buy <sku> <quantity> for more.")
    head = f"Your cart at {merchant.name}:"
    text = "\n".join([*([lead] if lead else []), head, *lines, total, hint])
    html = ((f"<p>{escape(lead)}</p>" if lead else "") + f"<p>{escape(head)}</p><ul>"
            + "".join(f"<li>{escape(line)}</li>" for line in lines)
            + f"</ul><p><strong>{escape(total)}</strong></p><p>{escape(hint)}</p>")
    return Reply(text, html)


async def add_once(db: Database, buyer_id: str, slug: str, sku: str, quantity: int,
                   event_id: str) -> dict[str, Any]:
    """Add to the cart for this event once; the cart as it is now."""
    async with transaction(db) as conn:
        if not await chat_rows.claim_event(conn, event_id):
            return await carts.cart_view(cast(Database, conn), buyer_id, slug)
        # The cart's reads and writes go through this transaction, with the claim.
        return await carts.add_in(conn, buyer_id, slug, sku, quantity)


@registry.command("buy", help="put a product in your cart", examples=("buy mug-1", "buy mug-1 2"))
@argument("sku", help="the product's SKU, on its card")
@argument("quantity", parser=integer(1, rules.MAX_QUANTITY), required=False,
          help="how many (1 if left out)")
async def buy(ctx: BuyerContext, sku: str, quantity: int | None) -> Reply:
    try:
        cart = await add_once(ctx.shop.db, ctx.sender, ctx.shop.merchant.slug, sku, quantity or 1,
                              ctx.event_id)
    except CommerceError as e:
        raise _refusal(e) from None
    added = next((i for i in cart["items"] if i["sku"] == sku), None)
    lead = f"Added {quantity or 1} × {added['title']}." if added else ""
    return cart_reply(cart, ctx.shop.merchant, lead)


@cart_group.command("show", help="show your cart")
async def cart_show(ctx: BuyerContext) -> Reply:
    return cart_reply(await carts.cart_view(ctx.shop.db, ctx.sender, ctx.shop.merchant.slug),
                      ctx.shop.merchant)


@cart_group.command("remove", help="take a product out of your cart",
                    examples=("cart remove mug-1",))
@argument("sku", help="the product's SKU")
async def cart_remove(ctx: BuyerContext, sku: str) -> Reply:
    try:
        cart = await carts.remove_from_cart(ctx.shop.db, ctx.sender, ctx.shop.merchant.slug, sku)
    except CommerceError as e:
        raise _refusal(e) from None
    return cart_reply(cart, ctx.shop.merchant, f"Removed {sku}.")


@registry.command("checkout", help="order what is in your cart: delivery, payment, coupon, "
                                   "then a summary to confirm")
async def checkout(ctx: BuyerContext) -> Reply:
    try:
        return await checkout_chat.start(ctx.shop.db, ctx.shop.merchant, ctx.room_id, ctx.sender,
                                         ctx.event_id)
    except CommerceError as e:
        raise _refusal(e) from None


# -- orders -------------------------------------------------------------------------------------

def _order_line(order: rules.Order) -> str:
    items = ", ".join(f"{i.quantity} × {i.title}" for i in order.items)
    return f"{order.id}: {order.status} — {items} — {rules.money(order.total)} {order.currency}"


@registry.command("orders", help="your orders at this shop")
async def my_orders(ctx: BuyerContext) -> Reply:
    found = [o for o in (await views.buyer_orders(ctx.shop.db, ctx.sender)).orders
             if o.merchant_slug == ctx.shop.merchant.slug]
    if not found:
        return Reply(f"You have no orders at {ctx.shop.merchant.name} yet. Type cart to see your "
                     "cart, checkout to order it.")
    lines = [_order_line(o) for o in found[:20]]
    hint = "Type order <id> for one of them."
    return Reply("\n".join([f"Your orders at {ctx.shop.merchant.name}:", *lines, hint]),
                 f"<p>Your orders at {escape(ctx.shop.merchant.name)}:</p><ul>"
                 + "".join(f"<li>{escape(line)}</li>" for line in lines)
                 + f"</ul><p>{escape(hint)}</p>")


@registry.command("order", help="one of your orders, as it stands", examples=("order A7K3Q9",))
@argument("id", parser=order_id, help="the order's ID, on its card")
async def my_order(ctx: BuyerContext, id: str) -> Reply:
    try:
        order = await views.buyer_order(ctx.shop.db, ctx.sender, id)
    except CommerceError as e:
        raise _refusal(e) from None
    lines = [_order_line(order)]
    if order.carrier:
        lines.append("Tracking: " + " ".join(
            p for p in (order.carrier, order.tracking, order.tracking_url) if p))
    if order.reason:
        lines.append(f"Reason: {order.reason}")
    lines.append("History: " + ", ".join(h.status for h in order.history))
    return Reply("\n".join(lines))


@registry.command("cancel", help="cancel one of your orders (before it ships)",
                  examples=("cancel A7K3Q9",))
@argument("id", parser=order_id, help="the order's ID")
async def cancel(ctx: BuyerContext, id: str) -> Reply:
    try:
        order = await orders.cancel_order(ctx.shop.db, ctx.shop.matrix, ctx.sender, id)
    except CommerceError as e:
        raise _refusal(e) from None
    return Reply(f"Order {order.id} is cancelled.")


@registry.command("forget", help="erase your address and phone from a finished order",
                  examples=("forget A7K3Q9",))
@argument("id", parser=order_id, help="the order's ID")
async def forget(ctx: BuyerContext, id: str) -> Reply:
    try:
        order = await orders.forget_personal_data(ctx.shop.db, ctx.shop.matrix, ctx.sender, id)
    except CommerceError as e:
        raise _refusal(e) from None
    return Reply(f"Your address and phone are erased from order {order.id}; the shop keeps "
                 "its items and total for its books.")


# -- a message in the DM ------------------------------------------------------------------------

def is_command(body: str) -> bool:
    """A message the shop answers: a known command whose words fit, or one that asks
    plainly (`!buy`, or the command word alone) even if they do not."""
    typed = parse_command(body, registry.prefix, direct=True)
    if typed is None or registry.lookup(typed.name) is None:
        return False
    if body.strip().startswith(registry.prefix) or not typed.args:
        return True
    try:
        invocation = registry.parse(body, direct=True)
    except UsageError:
        return False
    if invocation is not None and invocation.command.path == "help":
        topic = invocation.values.get("command")
        return not topic or registry.lookup(topic.split()[0]) is not None
    return True


async def handle_buyer_message(db: Database, matrix: OrdersMatrix, merchant: store.Merchant,
                               room_id: str, buyer_id: str, event_id: str,
                               content: dict[str, Any]) -> bool:
    """True when the message was for the shop's ordering (answered, not to be relayed)."""
    if content.get("msgtype") not in ("m.text", None) or "m.new_content" in content:
        return False
    body = strip_reply_fallback(str(content.get("body", ""))).strip()
    if not body:
        return False
    if await checkout_chat.in_progress(db, room_id):
        await checkout_chat.handle_answer(db, matrix, merchant, room_id, buyer_id, event_id,
                                          body)
        return True
    if not is_command(body):
        return False
    ctx = BuyerContext(sender=buyer_id, room_id=room_id, event_id=event_id, direct=True,
                       counter=Counter(db, matrix, merchant))
    outcome = await registry.dispatch(body, ctx)
    if outcome is None:
        return False
    log.info("order_chat.command", shop=merchant.slug, command=outcome.command, ok=outcome.ok)
    if outcome.command == "help":
        outcome_reply = Reply(outcome.reply.text + "\nAnything else you write here goes to "
                              f"the people of {merchant.name}.")
    else:
        outcome_reply = outcome.reply
    await chat_replies.send(db, matrix, merchant, room_id, event_id, outcome_reply)
    return True


# -- 🛒 on a product card ------------------------------------------------------------------------

def is_cart_reaction(key: str) -> bool:
    return key.replace("\ufe0f", "") == CART_REACTION


async def add_by_reaction(db: Database, matrix: OrdersMatrix, slug: str, sku: str,
                          buyer_id: str, reaction_event_id: str) -> None:
    """A buyer reacted 🛒 to a product card: one more in their cart at that shop, and the
    shop tells them in their DM what is in it and how to check out. Taking the reaction
    back does not take the product out (`cart remove <sku>` does)."""
    merchant = await store.get_merchant(db, store.MerchantSlug(slug))
    if merchant is None or merchant.status not in ("approved", "suspended"):
        return
    room_id, joined = await matrix.order_room(merchant, buyer_id)
    held_for = None if joined else buyer_id
    try:
        cart = await add_once(db, buyer_id, slug, sku, 1, reaction_event_id)
    except CommerceError as e:
        await chat_replies.send(db, matrix, merchant, room_id, reaction_event_id,
                     Reply(f"Sorry, {sku} could not go in your cart: {e.message}"),
                     held_for=held_for)
        return
    added = next((i for i in cart["items"] if i["sku"] == sku), None)
    lead = f"🛒 Added 1 × {added['title'] if added else sku} to your cart."
    await chat_replies.send(db, matrix, merchant, room_id, reaction_event_id,
                 cart_reply(cart, merchant, lead), held_for=held_for)
    log.info("order_chat.added_by_reaction", shop=slug, sku=sku)
