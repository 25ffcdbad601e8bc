"""Carts and orders as the shop bot shows them to buyers and staff, and the stats. Pure.

Prices stay the decimal strings the API writes ("24.90"); the order guide of
docs/shopbot.md is written here, next to the answers it describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any

from bots.shopbot.order_parsing import ACTIONS_USAGE, DELIVERY_KINDS, CheckoutChoice
from bots.shopbot.replies import table, when
from mercato.commands import Reply

MAX_LISTED_ORDERS = 20
STATUS_TEXT = {"placed": "placed, waiting for the shop", "confirmed": "confirmed",
               "declined": "declined", "paid": "paid", "shipped": "shipped",
               "delivered": "delivered", "cancelled": "cancelled", "refunded": "refunded"}
DELIVERY_TEXT = {"pickup": "pickup at the shop", "shipping": "shipping",
                 "none": "no delivery (digital)"}


# -- answers ----------------------------------------------------------------------------

def amount(value: Any, currency: str | None) -> str:
    """A price the API wrote ("24.90"), with its currency."""
    return f"{value} {currency}" if currency else str(value)


def _line(item: dict[str, Any], currency: str | None) -> str:
    return (f"{item['quantity']} × {item['title']} ({item['sku']}) — "
            f"{amount(item.get('unit_price'), currency or item.get('currency'))}")


def cart_reply(cart: dict[str, Any], prefix: str) -> Reply:
    shop = cart["shop"]
    items = list(cart.get("items") or [])
    if not items:
        return Reply(f"Your cart at {shop} is empty. Add a product with {prefix}buy {shop} "
                     "<sku> [quantity], or react 🛒 to its card.")
    lines = [f"Your cart at {shop}:", *(_line(i, cart.get("currency")) for i in items)]
    if cart.get("subtotal"):
        lines.append(f"Subtotal: {amount(cart['subtotal'], cart.get('currency'))}")
    lines.append(f"Order it: {prefix}checkout {shop} · take one out: {prefix}cart remove "
                 f"{shop} <sku>")
    rows = [(i["sku"], i["title"], str(i["quantity"]),
             amount(i.get("total"), i.get("currency"))) for i in items]
    html = (f"<p>{escape(lines[0])}</p>" + table(("SKU", "Product", "Qty", "Total"), rows)
            + "".join(f"<p>{escape(line)}</p>" for line in lines[len(items) + 1:]))
    return Reply("\n".join(lines), html)


def carts_reply(carts: Sequence[dict[str, Any]], prefix: str) -> Reply:
    filled = [c for c in carts if c.get("items")]
    if not filled:
        return Reply(f"Your carts are empty. Add a product with {prefix}buy <shop> <sku> "
                     "[quantity], or react 🛒 to a product card.")
    lines = ["Your carts:"]
    for cart in filled:
        count = sum(int(i["quantity"]) for i in cart["items"])
        total = amount(cart["subtotal"], cart.get("currency")) if cart.get("subtotal") else ""
        lines.append(f"{cart['shop']} — {count} item{'s' if count != 1 else ''}"
                     + (f" — {total}" if total else "")
                     + (f" — {cart['note']}" if cart.get("note") else ""))
    lines.append(f"See one: {prefix}cart <shop> · order it: {prefix}checkout <shop>")
    return Reply("\n".join(lines))


def added_to_cart(cart: dict[str, Any], sku: str, prefix: str) -> str:
    shop = cart["shop"]
    item = next((i for i in cart.get("items") or [] if i["sku"] == sku), None)
    what = f"{item['quantity']} × {item['title']} ({sku})" if item else sku
    total = (f" Cart subtotal: {amount(cart['subtotal'], cart.get('currency'))}."
             if cart.get("subtotal") else "")
    return (f"🛒 {what} in your cart at {shop}.{total} See it: {prefix}cart {shop} · "
            f"order it: {prefix}checkout {shop}")


def checkout_help(options: dict[str, Any], chosen: CheckoutChoice, cart: dict[str, Any],
                  shop_user: str, prefix: str) -> Reply:
    """What to type to order: the shop's choices, and a command ready to copy."""
    shop = options["shop"]
    kinds = [k for k in options.get("delivery") or [] if k in DELIVERY_KINDS]
    methods = list(options.get("payment_methods") or [])
    lines = [f"To order your cart at {shop}"
             + (f" ({amount(cart['subtotal'], cart.get('currency'))})"
                if cart.get("subtotal") else "")
             + f", add what is missing ({', '.join(f'{m}=' for m in chosen.missing)}):"]
    lines.append("Delivery: " + ", ".join(f"delivery={k} ({DELIVERY_TEXT[k]})" for k in kinds))
    lines.append("Payment: " + ", ".join(
        f"payment={m['method']} ({m.get('label', m['method'])}, with "
        f"{' or '.join(m.get('delivery') or [])})" for m in methods))
    lines.append('Optional: coupon=<your code>, phone=<number>; shipping needs '
                 'address="street, town" in quotes.')
    example = example_checkout(shop, kinds, methods, chosen)
    if example:
        lines.append(f"For example: {prefix}{example}")
    lines.append(f"Or step by step: open your chat with the shop ({shop_user}) and type "
                 "checkout there.")
    return Reply("\n".join(lines))


def example_checkout(shop: str, kinds: Sequence[str], methods: Sequence[dict[str, Any]],
                     chosen: CheckoutChoice) -> str:
    """A checkout command that fits the shop: the buyer's choices kept, the rest filled."""
    delivery = chosen.delivery or next((k for k in ("pickup", "none", "shipping")
                                        if k in kinds), None)
    if delivery is None:
        return ""
    fits = [m["method"] for m in methods if delivery in (m.get("delivery") or [])]
    payment = chosen.payment or (fits[0] if fits else None)
    if payment is None:
        return ""
    words = [f"checkout {shop}", f"delivery={delivery}", f"payment={payment}"]
    if delivery == "shipping":
        words.append(f'address="{chosen.address}"' if chosen.address
                     else 'address="12 Rue Haute, 69001 Lyon"')
    if chosen.phone:
        words.append(f"phone={chosen.phone}")
    if chosen.coupon:
        words.append(f"coupon={chosen.coupon}")
    return " ".join(words)


def _total(order: dict[str, Any]) -> str:
    return amount(order.get("total"), order.get("currency"))


def order_placed(order: dict[str, Any], shop_user: str, prefix: str) -> str:
    lines = [f"✅ Order {order['id']} placed at {order['shop']}: {_total(order)}"
             + (f" (coupon {order['coupon']}: −{amount(order['discount'], order['currency'])})"
                if order.get("coupon") else "") + "."]
    reference = (order.get("payment") or {}).get("reference")
    if reference:
        lines.append(f"Payment reference: {reference}.")
    lines.append(f"Its card, with how to pay, is in your chat with the shop ({shop_user}); "
                 "it changes as the shop moves the order on.")
    lines.append(f"Follow it: {prefix}order {order['id']} · cancel it before it ships: "
                 f"{prefix}cancel {order['id']}")
    return "\n".join(lines)


def order_line(order: dict[str, Any], *, buyer: bool = False) -> str:
    count = sum(int(i["quantity"]) for i in order.get("items") or [])
    who = order["buyer"] if buyer else order["shop"]
    items = f" — {count} item{'s' if count != 1 else ''}" if count else ""
    return (f"{order['id']} — {who}{items} — {_total(order)} — {order['status']} — "
            f"{when(order.get('created_at'))}")


def my_orders_reply(orders: Sequence[dict[str, Any]], prefix: str) -> Reply:
    if not orders:
        return Reply(f"You have no orders yet. Put a product in your cart with {prefix}buy "
                     f"<shop> <sku>, then {prefix}checkout <shop>.")
    shown = orders[:MAX_LISTED_ORDERS]
    lines = ["Your orders, newest first:", *(order_line(o) for o in shown)]
    if len(orders) > len(shown):
        lines.append(f"…and {len(orders) - len(shown)} older.")
    lines.append(f"Details: {prefix}order <id>")
    rows = [(o["id"], o["shop"], _total(o), o["status"], when(o.get("created_at")))
            for o in shown]
    html = (f"<p>{escape(lines[0])}</p>" + table(("Order", "Shop", "Total", "Status", "Placed"),
                                                 rows)
            + "".join(f"<p>{escape(line)}</p>" for line in lines[len(shown) + 1:]))
    return Reply("\n".join(lines), html)


def shop_orders_reply(slug: str, status: str | None, page: dict[str, Any],
                      prefix: str) -> Reply:
    orders = list(page.get("orders") or [])
    which = f"{status} orders" if status else "orders"
    if not orders:
        return Reply(f"{slug} has no {which}" + (" older than that." if status is None and
                                                  page.get("before") else "."))
    lines = [f"{slug}'s {which}, newest first:", *(order_line(o, buyer=True) for o in orders)]
    more = page.get("next")
    if more:
        lines.append(f"Older ones: {prefix}orders {status or 'all'} {slug} --before {more}")
    lines.append(f"Details: {prefix}order <id> · move one on: {prefix}order <id> "
                 f"{ACTIONS_USAGE}")
    rows = [(o["id"], o["buyer"], _total(o), o["status"], when(o.get("created_at")))
            for o in orders]
    html = (f"<p>{escape(lines[0])}</p>" + table(("Order", "Buyer", "Total", "Status",
                                                  "Placed"), rows)
            + "".join(f"<p>{escape(line)}</p>" for line in lines[len(orders) + 1:]))
    return Reply("\n".join(lines), html)


def order_details(order: dict[str, Any], prefix: str, *, staff: bool) -> Reply:
    """One order: items, totals, delivery, payment, tracking, history."""
    currency = order.get("currency")
    status = order["status"]
    lines = [f"Order {order['id']} at {order['shop']} — {STATUS_TEXT.get(status, status)}"
             + (f" ({order['reason']})" if order.get("reason") else "")]
    if staff:
        lines.append(f"Buyer: {order['buyer']}")
    lines += [_line(i, currency) + f" = {amount(i['total'], currency)}"
              for i in order.get("items") or []]
    if order.get("coupon"):
        lines.append(f"Coupon {order['coupon']}: −{amount(order['discount'], currency)}")
    lines.append(f"Total: {_total(order)}")
    lines.append(_delivery_text(order.get("delivery") or {}))
    payment = order.get("payment") or {}
    paid = f", paid {when(payment['paid_at'])}" if payment.get("paid_at") else ""
    reference = f", reference {payment['reference']}" if payment.get("reference") else ""
    lines.append(f"Payment: {str(payment.get('method', '')).replace('_', ' ')}"
                 f"{reference}{paid}")
    tracking = order.get("tracking")
    if tracking:
        lines.append("Tracking: " + " ".join(str(tracking[k]) for k in ("carrier", "number",
                                                                       "url") if tracking.get(k)))
    history = order.get("history") or []
    if history:
        lines.append("History: " + "; ".join(
            f"{h['status']} {when(h.get('at'))}" + (f" ({h['note']})" if h.get("note") else "")
            for h in history))
    lines.append(_next_steps(order, prefix, staff=staff))
    return Reply("\n".join(lines))


def _delivery_text(delivery: dict[str, Any]) -> str:
    kind = str(delivery.get("kind", ""))
    parts = [f"Delivery: {DELIVERY_TEXT.get(kind, kind)}"]
    if delivery.get("erased"):
        parts.append("address and phone erased")
    else:
        parts += [str(delivery[k]) for k in ("address", "phone") if delivery.get(k)]
    return " — ".join(parts)


def _next_steps(order: dict[str, Any], prefix: str, *, staff: bool) -> str:
    oid, status = order["id"], order["status"]
    if staff:
        return f"Move it on: {prefix}order {oid} {ACTIONS_USAGE}"
    if status in ("placed", "confirmed", "paid"):
        return f"Cancel it: {prefix}cancel {oid}"
    if status in ("delivered", "cancelled", "declined", "refunded") and \
            not (order.get("delivery") or {}).get("erased"):
        return f"Erase your address and phone from it: {prefix}forget {oid}"
    return "The shop tells you in your chat with it when it moves on."


def order_moved(order: dict[str, Any], prefix: str) -> str:
    status = order["status"]
    text = f"Order {order['id']} of {order['shop']} is now {status}"
    tracking = order.get("tracking")
    if status == "shipped" and tracking:
        text += f" with {tracking.get('carrier')} ({tracking.get('number') or 'no tracking'})"
    return (text + ". The buyer's order card shows it and they got a notice. "
            f"Details: {prefix}order {order['id']}")


# -- stats --------------------------------------------------------------------------------

def _money_of(value: Any) -> str:
    """Revenue as the stats API gives it: cents (a whole number) or a price string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{Decimal(value) / 100:.2f}"
    try:
        return f"{Decimal(str(value)):.2f}"
    except InvalidOperation:
        return str(value)


def order_stats_lines(stats: dict[str, Any]) -> list[str]:
    """Orders, revenue per currency and orders from campaigns, when the API gives them."""
    orders = stats.get("orders")
    orders = orders if isinstance(orders, dict) else {}
    found = orders.get("by_status")
    by_status: dict[str, Any] = found if isinstance(found, dict) else {}
    revenue = orders.get("revenue", stats.get("revenue"))
    lines: list[str] = []
    if by_status or "total" in orders:
        total = orders.get("total", sum(int(n) for n in by_status.values()))
        parts = ", ".join(f"{n} {s}" for s, n in by_status.items() if n)
        lines.append(f"Orders: {total}" + (f" ({parts})" if parts else "") + ".")
    if isinstance(revenue, dict) and revenue:
        lines.append("Revenue (orders not cancelled, declined or refunded): " + ", ".join(
            f"{_money_of(v)} {c}" for c, v in sorted(revenue.items())) + ".")
    from_campaigns = [(c, c.get("orders")) for c in stats.get("campaigns") or []
                      if isinstance(c, dict) and c.get("orders")]
    if from_campaigns:
        lines.append("Orders from campaigns: " + ", ".join(
            f"#{c['id']} {c.get('title') or ''} — {n}".replace("  ", " ")
            for c, n in from_campaigns) + ".")
    return lines


def with_order_stats(reply: Reply, stats: dict[str, Any]) -> Reply:
    """The stats reply, with the order lines added when the API gives them."""
    lines = order_stats_lines(stats)
    if not lines:
        return reply
    html = (reply.html or "") + "".join(f"<p>{escape(line)}</p>" for line in lines)
    return Reply(reply.text + "\n" + "\n".join(lines), html if reply.html else None)


# -- the guide in docs/shopbot.md --------------------------------------------------------

GUIDE = """## Buying and selling in chat

**Buyers.** `buy <shop> <sku> [quantity]` puts a product in your cart at that shop
(1 to 99 at a time; again adds more). `cart` lists your carts, `cart <shop>` shows one,
`cart remove <shop> <sku>` takes a product out. `checkout <shop>` orders the cart with
your choices written as `key=value` (quote a value with spaces):

```
buy green-grocer apples-1kg 2
cart green-grocer
checkout green-grocer delivery=pickup payment=pickup
checkout green-grocer delivery=shipping payment=on_delivery address="12 Rue Haute, Lyon"
```

Without `delivery=` and `payment=` the bot lists what the shop offers and writes the
command to type. For a checkout step by step, type `checkout` in your chat with the
shop's own account instead. The order card (items, total, how to pay) arrives in that
chat and changes as the shop moves the order on. Then `orders` lists your orders,
`order <id>` shows one, `cancel <id> [reason]` cancels it before it ships, and
`forget <id>` erases your address and phone from a delivered or cancelled order (the
shop keeps the totals).

**Staff** (owners and support: the orders permission). `orders all|<status> [shop]`
lists the shop's orders, newest first (`--before` shows older ones). `order <id>
<action>` moves an order on:

```
orders placed
order A7K3Q9 confirm
order A7K3Q9 decline Out of stock until May
order A7K3Q9 paid
order A7K3Q9 ship DHL 00340434161234567890 https://www.dhl.com/de-en/home/tracking.html
order A7K3Q9 delivered
order A7K3Q9 refund
order A7K3Q9 cancel The buyer asked by phone
```

Which `order` is meant: with an action word after the ID, it is the staff command, run
in the shop of yours (with the orders permission) that has the order (`--shop` picks
one). Without one, `order <id>` shows your own order if you placed it, else that order
of a shop where you handle orders. Likewise `orders` alone lists your own orders as a
buyer; with a status, `all` or a shop it lists a shop's. `stats` adds the shop's
orders, revenue per currency and orders from each campaign.
"""
