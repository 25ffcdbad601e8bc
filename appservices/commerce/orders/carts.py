"""Carts: what a buyer has put aside at each shop before checkout, and what it comes to
with a coupon. The 🛒 reaction, the shop bot's `buy` and the API add through the same
`add_to_cart`, which adds in one statement, so two additions at once both count.

Also here: whether a shop takes orders now and whether a product can be ordered in a
quantity, which placing an order checks again inside its own transaction.
"""

from __future__ import annotations

from typing import Any, cast

from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.errors import Conflict, Forbidden, InvalidInput, NotFound
from appservices.commerce.orders import rules
from appservices.commerce.orders import storage as rows
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import get_shop
from mercato.db import Connection, Database, transaction
from mercato.matrix.retrying import now_ms
from mercato.values import plain_text


class SoldOut(Conflict):
    errcode = "MERCATO_SOLD_OUT"


def not_taking_orders(merchant: store.Merchant) -> str | None:
    """Why the shop cannot take orders now, or None when it can."""
    if merchant.status == "approved":
        return None
    return f"{merchant.name} is {merchant.status} and cannot take orders now."


async def open_shop(db: Database, slug: str) -> store.Merchant:
    merchant = await get_shop(db, slug)
    reason = not_taking_orders(merchant)
    if reason:
        raise Forbidden(reason, errcode="MERCATO_SHOP_NOT_ACTIVE")
    return merchant


async def orderable(db: Any, merchant: store.Merchant, sku: str,
                    quantity: int) -> products.Product:
    """The product, if `quantity` of it can be ordered now; `db` may be a transaction's
    connection."""
    product = await product_rows.get_product(db, merchant.slug, sku)
    if product is None:
        raise NotFound(f"{merchant.name} has no product '{sku}'; check the SKU on its card.",
                       errcode="MERCATO_UNKNOWN_SKU")
    if product.stock == "out_of_stock":
        raise SoldOut(f"{product.title} ({sku}) is sold out.")
    if product.quantity is not None and product.quantity < quantity:
        raise SoldOut(f"Only {product.quantity} of {product.title} ({sku}) left; ask for "
                      f"{product.quantity} or fewer.")
    return product


def cart_answer(slug: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """A cart as the API answers it, from its lines (sku, title, quantity, price,
    currency, stock; a line without a title is a product the shop has since removed)."""
    items, subtotal, currencies = [], 0, set()
    for line in lines:
        if line["title"] is None:
            continue
        price = rules.cents(line["price"])
        subtotal += price * line["quantity"]
        currencies.add(line["currency"])
        items.append({"sku": line["sku"], "title": line["title"],
                      "quantity": line["quantity"], "unit_price": line["price"],
                      "currency": line["currency"],
                      "total": rules.money(price * line["quantity"]), "stock": line["stock"]})
    currency = currencies.pop() if len(currencies) == 1 else None
    return {"shop": slug, "items": items, "currency": currency,
            "subtotal": rules.money(subtotal) if currency else None}


async def cart_view(db: Database, buyer_id: str, slug: str) -> dict[str, Any]:
    merchant = await get_shop(db, slug)
    return cart_answer(merchant.slug, await rows.cart_lines(db, buyer_id, merchant.slug))


async def buyer_carts(db: Database, buyer_id: str) -> list[dict[str, Any]]:
    """Every cart of the buyer that holds something, whatever the shop's status; a shop
    that cannot take orders now says so in `note`."""
    by_shop: dict[str, list[dict[str, Any]]] = {}
    for line in await rows.cart_lines(db, buyer_id, None):
        by_shop.setdefault(line["merchant_slug"], []).append(line)
    carts = []
    for slug, lines in sorted(by_shop.items()):
        cart = cart_answer(slug, lines)
        if not cart["items"]:
            continue
        merchant = await get_shop(db, slug)
        carts.append({**cart, "shop_name": merchant.name, "shop_status": merchant.status,
                      "note": not_taking_orders(merchant)})
    return carts


async def add_to_cart(db: Database, buyer_id: str, slug: str, sku: str,
                      quantity: Any = 1) -> dict[str, Any]:
    """Add to what is in the cart (the 🛒 reaction adds one); the cart as it is now."""
    async with transaction(db) as conn:
        return await add_in(conn, buyer_id, slug, sku, quantity)


async def add_in(conn: Connection, buyer_id: str, slug: str, sku: str,
                 quantity: Any = 1) -> dict[str, Any]:
    """`add_to_cart` inside the caller's transaction. The sum is taken in one statement
    and checked (at most 99, in stock) before the transaction commits."""
    db = cast(Database, conn)  # reads and writes go through the caller's transaction
    merchant = await open_shop(db, slug)
    quantity = rules.validate_quantity(quantity)
    total = await rows.add_cart_item(conn, buyer_id, merchant.slug, sku, quantity,
                                     rules.MAX_QUANTITY)
    if total is None:
        held = await rows.cart_quantity(conn, buyer_id, merchant.slug, sku)
        raise InvalidInput("quantity in the cart", f"would be {held + quantity}; order "
                           f"from 1 to {rules.MAX_QUANTITY} of a product at a time")
    await orderable(conn, merchant, sku, total)
    return await cart_view(db, buyer_id, slug)


async def set_cart_item(db: Database, buyer_id: str, slug: str, sku: str,
                        quantity: Any) -> dict[str, Any]:
    merchant = await open_shop(db, slug)
    quantity = rules.validate_quantity(quantity)
    await orderable(db, merchant, sku, quantity)
    await rows.set_cart_item(db, buyer_id, merchant.slug, sku, quantity)
    return await cart_view(db, buyer_id, slug)


async def remove_from_cart(db: Database, buyer_id: str, slug: str, sku: str) -> dict[str, Any]:
    merchant = await get_shop(db, slug)
    if not await rows.delete_cart_item(db, buyer_id, merchant.slug, sku):
        raise NotFound(f"'{sku}' is not in your cart at {merchant.name}.")
    return await cart_view(db, buyer_id, slug)


# -- coupons and the chat checkout's summary --------------------------------------------------

async def checked_coupon(db: Database, merchant: store.Merchant, buyer_id: str,
                         value: Any) -> dict[str, Any] | None:
    """The buyer's claimed code of this shop, checked; the discount is taken in the order's
    transaction, where the code is spent once."""
    if value in (None, ""):
        return None
    code = plain_text("coupon", value, 40).upper()
    found = await rows.code_for_checkout(db, code)
    if found is None or found["merchant_slug"] != merchant.slug:
        raise InvalidInput("coupon", f"{code} is not a code of {merchant.name}")
    if found["user_id"] != buyer_id:
        raise InvalidInput("coupon", f"{code} was claimed by another account; claim your own "
                                     "in the shop's channel")
    if found["expires_at"] <= now_ms():
        raise InvalidInput("coupon", f"{code} has expired")
    if found["redeemed_at"] is not None:
        raise InvalidInput("coupon", f"{code} was already used")
    if not found["percent_off"] and not found["amount_off"]:
        raise InvalidInput("coupon", f"{code} takes nothing off at checkout; show it to "
                                     f"{merchant.name} instead")
    return found


def coupon_discount(subtotal: int, coupon: dict[str, Any] | None) -> int:
    if coupon is None:
        return 0
    return rules.discount_for(subtotal, coupon["percent_off"],
                              rules.parse_money_off(coupon["amount_off"]))


async def checkout_quote(db: Database, buyer_id: str, slug: str,
                         coupon: str | None = None) -> dict[str, Any]:
    """What the buyer's cart at this shop comes to with this coupon: the summary the chat
    checkout shows before `confirm` (placing the order checks all of it again)."""
    merchant = await open_shop(db, slug)
    view = await cart_view(db, buyer_id, slug)
    if not view["items"]:
        raise InvalidInput("items", f"your cart at {merchant.name} is empty; add products first")
    if view["currency"] is None:
        raise InvalidInput("items", "are priced in more than one currency; order them "
                                    "separately")
    found = await checked_coupon(db, merchant, buyer_id, coupon)
    subtotal = rules.cents(view["subtotal"])
    discount = coupon_discount(subtotal, found)
    return {**view, "coupon": found["code"] if found else None,
            "discount": rules.money(discount), "total": rules.money(subtotal - discount)}
