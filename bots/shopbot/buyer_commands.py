"""What buyers do: follow shops, find deals, share product cards, set alerts, claim coupons.

Following is joining a shop's channel, which only the buyer's own client can do: the
bot is not in the channels, so it answers with the channel's address and a link
that opens it in any client.
"""

from __future__ import annotations

import asyncio
from html import escape
from typing import Any

from bots.shopbot import catalog_text
from bots.shopbot.api import ApiError
from bots.shopbot.buttons import now_ms
from bots.shopbot.campaign_text import coupon_list, parse_coupon_id
from bots.shopbot.catalog_text import channel_link, parse_sku
from bots.shopbot.context import CardReply, ShopContext, registry
from bots.shopbot.replies import parse_slug
from mercato.commands import CommandError, Reply, argument
from mercato.types import MerchantSlug, Sku

MAX_DEAL_SHOPS = 10

SHOP_ARGUMENT = argument("shop", parser=parse_slug, metavar="shop",
                         help="the shop's short name ({prefix}shops lists them)")
SKU_ARGUMENT = argument("sku", parser=parse_sku, help="the product's code, shown on its card")


async def _channel(ctx: ShopContext, slug: MerchantSlug) -> tuple[dict[str, Any], str]:
    shop = await ctx.commerce.shop(slug)
    channels = shop.get("channels") or []
    if not channels:
        raise CommandError(f"{shop['name']} ({slug}) has no channel yet, so there is nothing "
                           "to follow. Try again once the shop is open.")
    return shop, str(channels[0])


@registry.command("follow", help="follow a shop: get its posts in your chat list",
                  examples=("follow green-grocer",))
@SHOP_ARGUMENT
async def follow(ctx: ShopContext, shop: MerchantSlug) -> Reply:
    details, alias = await _channel(ctx, shop)
    link = channel_link(alias)
    name = details["name"]
    text = (f"To follow {name}, join its channel {alias}: open {link} or, in your client, "
            f"join the room {alias}. Its posts then arrive there; only the shop posts, and "
            "you can react. To unfollow, leave the room.")
    html = (f"<p>To follow {escape(name)}, join its channel "
            f'<a href="{escape(link)}">{escape(alias)}</a> (or, in your client, join the room '
            f"<code>{escape(alias)}</code>). Its posts then arrive there; only the shop posts, "
            "and you can react. To unfollow, leave the room.</p>")
    return Reply(text, html)


@registry.command("unfollow", help="stop following a shop", examples=("unfollow green-grocer",))
@SHOP_ARGUMENT
async def unfollow(ctx: ShopContext, shop: MerchantSlug) -> str:
    details, alias = await _channel(ctx, shop)
    return (f"To unfollow {details['name']}, leave its channel {alias} in your client (the "
            "room's menu → Leave). You get no more of its posts; follow again any time with "
            f"{ctx.prefix}follow {shop}.")


@registry.command(
    "deals", help="verified shops, their channels, and what they have on sale",
    details="Deals are posted in shops' channels: this lists the shops the operator verified, "
            "with the channel to join, and products sold below their earlier price.")
async def deals(ctx: ShopContext) -> Reply:
    verified = [s for s in await ctx.commerce.directory() if s.get("verified")]
    shown = verified[:MAX_DEAL_SHOPS]

    async def sales_of(slug: str) -> list[dict[str, Any]]:
        try:
            found = await ctx.commerce.products(MerchantSlug(slug))
        except ApiError:
            return []  # one shop's catalog failing must not hide the others
        return catalog_text.on_sale(found.get("products") or [])

    sales = await asyncio.gather(*(sales_of(s["slug"]) for s in shown))
    return catalog_text.deals(shown, {s["slug"]: found for s, found in zip(shown, sales,
                                                                          strict=True)},
                              ctx.prefix)


@registry.command("share", help="get a product's card, to forward anywhere",
                  examples=("share green-grocer apples-1kg",))
@SHOP_ARGUMENT
@SKU_ARGUMENT
async def share(ctx: ShopContext, shop: MerchantSlug, sku: Sku) -> CardReply:
    card = await ctx.commerce.card(shop, sku)
    return CardReply(str(card.get("body", "")), content=card)


@registry.command(
    "alert", help="be told once when a product gets cheaper or is back in stock",
    details="The shop tells you by direct message. You can also react 🔔 to a product card.",
    examples=("alert green-grocer apples-1kg",))
@SHOP_ARGUMENT
@SKU_ARGUMENT
async def alert(ctx: ShopContext, shop: MerchantSlug, sku: Sku) -> str:
    product = await ctx.commerce.add_alert(shop, sku)
    return (f"🔔 Alert set on {sku} of {shop} (now {product['price']} {product['currency']}). "
            "The shop will send you one direct message when the price drops or it is back in "
            f"stock. Your alerts: {ctx.prefix}alerts")


alerts = registry.group("alerts", help="your price-drop alerts", default="list")


@alerts.command("list", help="the alerts you set")
async def alerts_list(ctx: ShopContext) -> Reply:
    return catalog_text.alert_list(await ctx.commerce.alerts(), ctx.prefix)


@alerts.command("cancel", help="cancel an alert", examples=("alerts cancel green-grocer "
                                                             "apples-1kg",))
@SHOP_ARGUMENT
@SKU_ARGUMENT
async def alerts_cancel(ctx: ShopContext, shop: MerchantSlug, sku: Sku) -> str:
    await ctx.commerce.cancel_alert(shop, sku)
    return f"Alert on {sku} of {shop} cancelled."


@registry.command(
    "claim", help="claim a coupon; your personal code comes by direct message",
    details="The coupon's number is in the shop's post (or react 🎟️ to the post).",
    examples=("claim 7",))
@argument("coupon_id", parser=parse_coupon_id, metavar="id", help="the coupon's number")
async def claim(ctx: ShopContext, coupon_id: int) -> str:
    claimed = await ctx.commerce.claim(coupon_id)
    return (f"🎟️ Coupon {coupon_id} “{claimed.get('title', '')}” is yours. The shop sends your "
            "personal code by direct message: accept its chat invitation if your client asks. "
            "Claiming again gives the same code.")


COUPONS_HELP = "your coupons: codes, shops, expiry, whether used"
COUPONS_DETAILS = ("The codes are shown in a direct chat with me; in a group room only the "
                   "coupons and their state.")


async def _my_coupons(ctx: ShopContext) -> Reply:
    return coupon_list(await ctx.commerce.coupons(), ctx.prefix, show_codes=ctx.direct,
                       now=now_ms())


@registry.command("coupons", help=COUPONS_HELP, details=COUPONS_DETAILS,
                  examples=("coupons",))
async def coupons(ctx: ShopContext) -> Reply:
    return await _my_coupons(ctx)


# Command names are single words: "my coupons" is the group "my" whose default is "coupons".
my = registry.group("my", help="what is yours: your coupons", default="coupons")


@my.command("coupons", help=COUPONS_HELP, details=COUPONS_DETAILS, examples=("my coupons",))
async def my_coupons(ctx: ShopContext) -> Reply:
    return await _my_coupons(ctx)
