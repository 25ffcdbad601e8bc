"""`coupons` in a buyer's DM with a shop: the menu's "my coupons", answered by the shop
with the buyer's codes from it that can still be used. Registered with the DM's other
commands (orders/chat.py), so it is answered, not relayed to the staff room."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from appservices.commerce.campaigns import storage as coupon_rows
from appservices.commerce.orders.chat import BuyerContext, registry
from appservices.commerce.shops.storage import now_ms
from mercato.commands import Reply


@registry.command("coupons", help="your coupon codes from this shop that you can still use")
async def my_coupons(ctx: BuyerContext) -> Reply:
    shop = ctx.shop.merchant
    now = now_ms()
    usable = [c for c in await coupon_rows.codes_of_user(ctx.shop.db, ctx.sender)
              if c["merchant_slug"] == shop.slug and c["redeemed_at"] is None
              and c["expires_at"] > now]
    if not usable:
        return Reply(f"You have no coupon codes from {shop.name} to use right now. Follow the "
                     "shop's channel: coupons are handed out there.")
    lines = [f"{c['code']} — {c['title']} (until "
             f"{datetime.fromtimestamp(c['expires_at'] / 1000, UTC):%Y-%m-%d})"
             for c in usable[:20]]
    hint = "Type the code at checkout, or give it to the shop when you order."
    return Reply("\n".join([f"Your coupon codes from {shop.name}:", *lines, hint]),
                 f"<p>Your coupon codes from {escape(shop.name)}:</p><ul>"
                 + "".join(f"<li>{escape(line)}</li>" for line in lines)
                 + f"</ul><p>{escape(hint)}</p>")
