"""Ordering by chat with the shop bot: the buyer's cart, checkout and orders, and the
staff's list of a shop's orders and the moves that carry an order to the buyer's door.

The bot holds no payment dialog: `checkout <shop>` places the order from the cart with
the choices typed as `key=value`, or says what to type; the step-by-step checkout
lives in the buyer's chat with the shop's own account. The order card is sent there by
commerce, never by the bot.

`order <id>` and `orders` serve both sides. With an action word after the ID (`order
A7K3Q9 ship DHL 0034…`) it is the staff command, run in whichever of the user's shops
with the orders permission has the order; without one it shows the user's own order,
else that order of a shop where they handle orders. `orders` alone lists the user's
own orders; with a status, `all` or a shop it lists a shop's.
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

from bots.shopbot import order_parsing, order_text
from bots.shopbot.api import ApiError
from bots.shopbot.buyer_commands import SHOP_ARGUMENT, SKU_ARGUMENT, my
from bots.shopbot.catalog_text import parse_sku
from bots.shopbot.context import ALLOWED_ROLES, SHOP_OPTION, WHO, Need, ShopContext, registry
from bots.shopbot.order_parsing import OrderID
from bots.shopbot.replies import parse_slug
from mercato.commands import (
    ArgumentError,
    CommandError,
    Reply,
    UsageError,
    argument,
    option,
    quoted,
)
from mercato.types import MerchantSlug, Sku

ORDER_ARGUMENT = argument("order_id", parser=order_parsing.parse_order_id, metavar="id",
                          help="the order's six letters and digits, like A7K3Q9")


def _usage(error: ArgumentError) -> UsageError:
    return UsageError(str(error))


# -- the buyer's cart ----------------------------------------------------------------------

@registry.command(
    "buy", help="put a product in your cart at a shop",
    details="Buying the same product again adds to the quantity (at most 99). Then "
            "{prefix}checkout <shop>. You can also react 🛒 to a product card.",
    examples=("buy green-grocer apples-1kg", "buy green-grocer apples-1kg 3"))
@SHOP_ARGUMENT
@SKU_ARGUMENT
@argument("quantity", parser=order_parsing.parse_quantity, required=False,
          help="how many, 1 to 99 (default 1)")
async def buy(ctx: ShopContext, shop: MerchantSlug, sku: Sku, quantity: int | None) -> str:
    # The API adds in one step and checks the sum (at most 99, in stock), saying why not.
    cart = await ctx.commerce.add_to_cart(shop, sku, quantity or 1)
    return order_text.added_to_cart(cart, sku, ctx.prefix)


@registry.command(
    "cart", help="your carts, one shop's cart, or take a product out",
    details="cart lists every shop where your cart holds something; cart <shop> shows "
            "that cart; cart remove <shop> <sku> takes a product out.",
    examples=("cart", "cart green-grocer", "cart remove green-grocer apples-1kg"))
@argument("what", required=False, rest=True, metavar="shop | remove <shop> <sku>",
          help="a shop's short name, or remove with the shop and the product's code")
async def cart(ctx: ShopContext, what: str | None) -> Reply | str:
    words = (what or "").split()
    if not words:
        return await _all_carts(ctx)
    try:
        if words[0].lower() == "remove":
            if len(words) != 3:
                raise ArgumentError("write cart remove <shop> <sku>, like cart remove "
                                    "green-grocer apples-1kg")
            slug, sku = parse_slug(words[1]), parse_sku(words[2])
        elif len(words) == 1:
            return order_text.cart_reply(await ctx.commerce.cart(parse_slug(words[0])),
                                         ctx.prefix)
        else:
            raise ArgumentError(f"I did not expect {quoted(' '.join(words[1:]))}; type cart "
                                "<shop>, or cart remove <shop> <sku>")
    except ArgumentError as e:
        raise _usage(e) from None
    left = await ctx.commerce.remove_cart_item(slug, sku)
    return Reply(f"{sku} is out of your cart at {slug}.\n"
                 + order_text.cart_reply(left, ctx.prefix).text)


async def _all_carts(ctx: ShopContext) -> Reply:
    return order_text.carts_reply(await ctx.commerce.carts(), ctx.prefix)


@registry.command(
    "checkout", help="order what is in your cart at a shop",
    details="Write your choices as key=value: delivery=pickup|shipping|none, "
            "payment=<method>, and if you like coupon=<code>, phone=<number>; shipping "
            'needs address="street, town" (quote a value with spaces). Without delivery '
            "and payment I list what the shop offers and what to type. For a checkout step "
            "by step, type checkout in your chat with the shop itself.",
    examples=("checkout green-grocer",
              "checkout green-grocer delivery=pickup payment=pickup",
              'checkout green-grocer delivery=shipping payment=on_delivery address="12 Rue '
              'Haute, 69001 Lyon" coupon=K7Q2M9PXWA'))
@SHOP_ARGUMENT
@argument("choices", required=False, rest=True, metavar="key=value",
          help="delivery=, payment=, coupon=, address=, phone=")
async def checkout(ctx: ShopContext, shop: MerchantSlug, choices: str | None) -> Reply | str:
    try:
        chosen = order_parsing.parse_checkout(choices)
    except ArgumentError as e:
        raise _usage(e) from None
    if chosen.missing:
        options, basket = await asyncio.gather(ctx.commerce.checkout_options(shop),
                                               ctx.commerce.cart(shop))
        if not basket.get("items"):
            return order_text.cart_reply(basket, ctx.prefix)
        return order_text.checkout_help(options, chosen, basket, await _shop_user(ctx, shop),
                                        ctx.prefix)
    order = await ctx.commerce.place_order(chosen.order_body(shop))
    return order_text.order_placed(order, await _shop_user(ctx, shop), ctx.prefix)


async def _shop_user(ctx: ShopContext, slug: MerchantSlug) -> str:
    """The shop's own Matrix account, where the order card and the dialog are."""
    try:
        return str((await ctx.commerce.shop(slug)).get("user_id") or f"@shop_{slug}")
    except ApiError:
        return f"@shop_{slug}"  # the order stands; only the name of the chat is missing


# -- the buyer's orders -------------------------------------------------------------------

@registry.command("cancel", help="cancel your order before it ships",
                  examples=("cancel A7K3Q9", "cancel A7K3Q9 Ordered the wrong size"))
@ORDER_ARGUMENT
@argument("reason", required=False, rest=True, help="why, for the shop (optional)")
async def cancel(ctx: ShopContext, order_id: OrderID, reason: str | None) -> str:
    order = await ctx.commerce.cancel_order(order_id, reason)
    return (f"Order {order['id']} at {order['shop']} is cancelled; the shop is told and "
            f"your order card shows it. Erase your address from it: {ctx.prefix}forget "
            f"{order['id']}")


@registry.command(
    "forget", help="erase your address and phone from a finished order",
    details="For a delivered or cancelled order; the shop keeps its totals for its books.",
    examples=("forget A7K3Q9",))
@ORDER_ARGUMENT
async def forget(ctx: ShopContext, order_id: OrderID) -> str:
    order = await ctx.commerce.forget_order(order_id)
    return (f"The address and phone of order {order['id']} are erased, from the shop's "
            "records and from your order card; its totals stay for the shop's books.")


@my.command("orders", help="your orders as a buyer", examples=("my orders",))
async def my_orders(ctx: ShopContext) -> Reply:
    return order_text.my_orders_reply(await ctx.commerce.my_orders(), ctx.prefix)


# -- both sides: orders, order ----------------------------------------------------------------

@registry.command(
    "orders", help="your orders; for a shop's staff, the shop's orders",
    details="orders alone lists your own orders. The shop's owners and support staff list "
            "the shop's, newest first, with a status (" + ", ".join(order_parsing.STATUSES)
            + ") or all, and the shop when they handle several.",
    examples=("orders", "orders placed", "orders all green-grocer"))
@argument("which", required=False, rest=True, metavar="all|status] [shop",
          help="all or a status, and the shop")
@option("before", parser=order_parsing.parse_page_cursor, metavar="mark",
        help="older than this (the list says it)")
@SHOP_OPTION
async def orders(ctx: ShopContext, which: str | None, before: str | None,
                 shop: MerchantSlug | None) -> Reply:
    words = (which or "").split()
    if not words and shop is None and before is None:
        return await _own_orders(ctx)
    try:
        wanted = order_parsing.parse_orders_filter(words)
        named = shop or (parse_slug(wanted.shop) if wanted.shop else None)
    except ArgumentError as e:
        raise _usage(e) from None
    slugs = await _order_shops(ctx, named, "orders")
    if len(slugs) > 1:
        raise CommandError(f"You handle the orders of several shops ({', '.join(slugs)}); "
                           f"say which, like {ctx.prefix}orders {wanted.status or 'all'} "
                           f"{slugs[0]}")
    page = await ctx.commerce.shop_orders(slugs[0], wanted.status, cursor=before,
                                          limit=order_text.MAX_LISTED_ORDERS)
    return order_text.shop_orders_reply(slugs[0], wanted.status, {**page, "before": before},
                                        ctx.prefix)


async def _own_orders(ctx: ShopContext) -> Reply:
    listed = order_text.my_orders_reply(await ctx.commerce.my_orders(), ctx.prefix)
    handled = await _handled_shops(ctx)
    if not handled:
        return listed
    hint = (f"You handle the orders of {', '.join(handled)}: {ctx.prefix}orders all "
            f"{handled[0]} (or a status instead of all).")
    return Reply(f"{listed.text}\n{hint}", (listed.html or "") + f"<p>{hint}</p>"
                 if listed.html else None)


@registry.command(
    "order", help="one order; for staff, move it on (confirm, ship …)",
    details="order <id> shows your own order, or the order of a shop where you handle "
            "orders. The shop's owners and support staff move it on with an action after "
            "the ID: " + order_parsing.ACTIONS_USAGE + ". Quote a carrier of two words.",
    examples=("order A7K3Q9", "order A7K3Q9 confirm", "order A7K3Q9 decline Out of stock",
              "order A7K3Q9 ship DHL 00340434161234567890", "order A7K3Q9 delivered"))
@ORDER_ARGUMENT
@argument("action", required=False, rest=True, metavar="action",
          help=order_parsing.ACTIONS_USAGE)
@SHOP_OPTION
async def order(ctx: ShopContext, order_id: OrderID, action: str | None,
                shop: MerchantSlug | None) -> Reply | str:
    if action:
        try:
            move = order_parsing.parse_action(action)
        except ArgumentError as e:
            raise _usage(e) from None
        return await _move(ctx, order_id, move, f"order {order_id} {action.split()[0]}", shop)
    if shop is None:
        try:
            return order_text.order_details(await ctx.commerce.my_order(order_id), ctx.prefix,
                                            staff=False)
        except ApiError as e:
            if e.status != 404:
                raise
            handled = await _handled_shops(ctx)
            if not handled:
                raise
            slugs = handled
    else:
        slugs = await _order_shops(ctx, shop, f"order {order_id}")
    found = await _in_shops(slugs, lambda slug: ctx.commerce.shop_order(slug, order_id))
    if found is None:
        raise CommandError(f"Neither you nor {', '.join(slugs)} have an order {order_id}. "
                           f"Check the ID with {ctx.prefix}orders.")
    return order_text.order_details(found, ctx.prefix, staff=True)


async def _move(ctx: ShopContext, order_id: OrderID, move: order_parsing.StatusMove,
                typed: str, shop: MerchantSlug | None) -> str:
    slugs = await _order_shops(ctx, shop, typed)
    moved = await _in_shops(slugs, lambda slug: ctx.commerce.move_order(slug, order_id,
                                                                          move.body()))
    if moved is None:
        raise CommandError(f"None of your shops ({', '.join(slugs)}) has an order {order_id}. "
                           f"Check the ID with {ctx.prefix}orders all <shop>.")
    return order_text.order_moved(moved, ctx.prefix)


async def _in_shops(slugs: list[MerchantSlug], call: Any) -> dict[str, Any] | None:
    """The answer of the first shop that has the order; a shop without it answers 404
    before changing anything. With one shop its own refusal is shown as it is."""
    for slug in slugs:
        try:
            return dict(await call(slug))
        except ApiError as e:
            if e.status != 404 or len(slugs) == 1:
                raise
    return None


# -- who handles a shop's orders ----------------------------------------------------------------

async def _handled_shops(ctx: ShopContext) -> list[MerchantSlug]:
    """The user's shops where their role may read and move orders."""
    ctx.shops = await ctx.commerce.my_shops()
    return [MerchantSlug(s["slug"]) for s in ctx.shops
            if s["role"] in ALLOWED_ROLES[Need.ORDERS]]


async def _order_shops(ctx: ShopContext, slug: MerchantSlug | None,
                       typed: str) -> list[MerchantSlug]:
    """The shops where the user may run `typed` (the one named, or all theirs that
    allow it); refuses with the role they have when none does."""
    p = ctx.prefix
    handled = await _handled_shops(ctx)
    roles = {s["slug"]: s["role"] for s in ctx.shops}
    who = WHO[Need.ORDERS]
    if slug is not None:
        if slug in handled:
            return [slug]
        if slug not in roles:
            statuses = ", ".join(order_parsing.STATUSES)
            raise CommandError(f"You are not staff of the shop {quoted(slug)}, so you cannot use "
                               f"{p}{typed} there."
                               + (f" Your shops: {', '.join(roles)}." if roles else "")
                               + f" (A status is one of: {statuses}, or all.)")
        _refuse(typed, slug, roles[slug], p)
    if handled:
        return handled
    if roles:
        first = next(iter(roles))
        _refuse(typed, first, roles[first], p)
    raise CommandError(f"{p}{typed} is for {who} (the orders permission); you do not work "
                       f"for any shop. Your own orders as a buyer: {p}orders")


def _refuse(typed: str, slug: str, role: str, p: str) -> NoReturn:
    raise CommandError(f"{p}{typed} is for {WHO[Need.ORDERS]} of '{slug}' (the orders "
                       f"permission); your role there is {role}. Ask an owner to change it "
                       f"({p}staff add).")
