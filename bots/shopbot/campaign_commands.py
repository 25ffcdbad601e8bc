"""Campaign, coupon and stats commands: draft, preview, schedule, send, cancel; redeem codes."""

from __future__ import annotations

from typing import Any

from bots.shopbot import buttons, campaign_text, order_text
from bots.shopbot.campaign_text import DraftInput
from bots.shopbot.catalog_text import parse_currency, parse_price
from bots.shopbot.context import (
    SHOP_OPTION,
    YES_OPTION,
    Need,
    Question,
    ShopContext,
    registry,
)
from mercato.commands import CommandError, Reply, argument, https_url, integer, one_of, option
from mercato.types import CampaignID, MerchantSlug

MAX_IMAGE_BYTES = 10 * 1024 * 1024

campaign = registry.group("campaign", help="posts to your shop's followers", default="list",
                          aliases=("campaigns",))

CAMPAIGN_ARGUMENT = argument("campaign_id", parser=campaign_text.parse_campaign_id,
                             metavar="id", help="the campaign's number ({prefix}campaign list)")


def _draft_options(command: Any) -> Any:
    """What a post says, shared by `campaign draft` and `coupon create`."""
    for declare in reversed((
            option("text", rest=True, metavar="words",
                   help="the post's text (everything up to the next --option)"),
            option("link", parser=https_url, metavar="https://…",
                   help="a link to your verified website or a Mercato product page"),
            option("silent", flag=True, help="post without notifying (text only)"),
    )):
        command = declare(command)
    return command


async def _image(ctx: ShopContext, shop: MerchantSlug) -> dict[str, Any]:
    """The image sent with the command (or replied to), uploaded for the shop's posts."""
    attachment = await ctx.file()
    if attachment is None:
        return {}
    if not attachment.mimetype.startswith("image/"):
        raise CommandError(f"{attachment.shown_name} is not an image; a post can carry a PNG, "
                           "JPEG, WebP or GIF image.")
    if attachment.size is not None and attachment.size > MAX_IMAGE_BYTES:
        raise CommandError(f"The image is over {MAX_IMAGE_BYTES // 2**20} MiB; send a smaller "
                           "one.")
    data = await ctx.bot_matrix.download(attachment)
    return await ctx.commerce.upload_image(shop, data, attachment.mimetype)


async def _draft(ctx: ShopContext, shop: MerchantSlug, typed: DraftInput) -> str:
    body = campaign_text.draft_body(typed, ctx.prefix)
    body.update(await _image(ctx, shop))
    created = await ctx.commerce.create_campaign(shop, body)
    return campaign_text.campaign_created(shop, created, ctx.prefix)


@campaign.command(
    "draft", help="draft a post: product, sale, coupon or text", permission=Need.EDITOR,
    details="What each kind needs: product --price and --currency; sale --discount (and "
            "--ends); coupon --stock-codes and --expires; text --text. To add an image, send "
            "the command as the image's caption or reply to the image with it. Links may "
            "only go to your verified website or Mercato's product pages.",
    examples=tuple(campaign_text.EXAMPLES.values()))
@argument("kind", parser=one_of(*campaign_text.KINDS), metavar="|".join(campaign_text.KINDS))
@argument("title", rest=True, help="the post's headline")
@_draft_options
@option("price", parser=parse_price, metavar="price", help="product posts: like 24.00")
@option("currency", parser=parse_currency, metavar="code", help="product posts: like EUR")
@option("discount", rest=True, metavar="text", help="sale posts: like 20% off")
@option("ends", rest=True, metavar="text", help="sale posts: when it ends, like Sunday")
@option("stock-codes", parser=integer(1, 1_000_000), metavar="N",
        help="coupon drops: how many codes")
@option("expires", parser=campaign_text.parse_time, metavar="time",
        help="coupon drops: when codes expire, like 2026-12-31T23:59Z")
@SHOP_OPTION
async def campaign_draft(ctx: ShopContext, kind: str, title: str, text: str | None,
                         link: str | None, silent: bool, price: str | None,
                         currency: str | None, discount: str | None, ends: str | None,
                         stock_codes: int | None, expires: str | None,
                         shop: MerchantSlug) -> str:
    return await _draft(ctx, shop, DraftInput(
        kind=kind, title=title, text=text, price=price, currency=currency, link=link,
        discount=discount, ends=ends, stock_codes=stock_codes, expires=expires, silent=silent))


@campaign.command("list", help="the shop's campaigns, newest first", permission=Need.STATS)
@SHOP_OPTION
async def campaign_list(ctx: ShopContext, shop: MerchantSlug) -> Reply:
    return campaign_text.campaign_list(shop, await ctx.commerce.campaigns(shop), ctx.prefix)


@campaign.command("preview", help="show the post in the shop's staff room first",
                  permission=Need.EDITOR, examples=("campaign preview 12",))
@CAMPAIGN_ARGUMENT
@SHOP_OPTION
async def campaign_preview(ctx: ShopContext, campaign_id: int, shop: MerchantSlug) -> str:
    await ctx.commerce.preview_campaign(shop, CampaignID(campaign_id))
    return (f"The preview of campaign {campaign_id} is in the staff room of {shop}; nothing "
            f"went to followers. Send it with {ctx.prefix}campaign send {campaign_id}.")


@campaign.command(
    "schedule", help="post at a given time (survives restarts)", permission=Need.EDITOR,
    details="Scheduling again changes the time. Cancel with {prefix}campaign cancel <id>.",
    examples=("campaign schedule 12 2026-12-01T09:00+01:00",))
@CAMPAIGN_ARGUMENT
@argument("at", parser=campaign_text.parse_time, rest=True, metavar="time",
          help="ISO 8601 with its timezone, like 2026-12-01T09:00+01:00")
@SHOP_OPTION
async def campaign_schedule(ctx: ShopContext, campaign_id: int, at: str,
                            shop: MerchantSlug) -> str:
    scheduled = await ctx.commerce.schedule_campaign(shop, CampaignID(campaign_id), at)
    return (f"Campaign {campaign_id} of {shop} is scheduled for "
            f"{campaign_text.scheduled_text(scheduled)}. Cancel with {ctx.prefix}campaign "
            f"cancel {campaign_id}.")


@campaign.command("send", help="post now to every follower (asks first)",
                  permission=Need.EDITOR, examples=("campaign send 12",))
@CAMPAIGN_ARGUMENT
@YES_OPTION
@SHOP_OPTION
async def campaign_send(ctx: ShopContext, campaign_id: int, yes: bool,
                        shop: MerchantSlug) -> Reply:
    cid = CampaignID(campaign_id)
    current = await ctx.commerce.campaign(shop, cid)
    if current.get("state") not in ("draft", "scheduled"):
        raise CommandError(f"Campaign {campaign_id} is {current.get('state')}; only drafts "
                           "and scheduled campaigns can be sent.")
    if not (yes or ctx.confirmed):
        return Question(
            f"Send {campaign_text.campaign_line(current)} to every follower of {shop} now? "
            "It counts against the shop's posts for today.\n"
            + buttons.legend("send it now", "keep it as it is"),
            declined=f"OK, campaign {campaign_id} was not sent.")
    await ctx.commerce.schedule_campaign(shop, cid)
    return Reply(f"Campaign {campaign_id} of {shop} is on its way to the followers. See how it "
                 f"does with {ctx.prefix}stats.")


@campaign.command("cancel", help="cancel a draft or a scheduled campaign",
                  permission=Need.EDITOR, examples=("campaign cancel 12",))
@CAMPAIGN_ARGUMENT
@SHOP_OPTION
async def campaign_cancel(ctx: ShopContext, campaign_id: int, shop: MerchantSlug) -> str:
    await ctx.commerce.cancel_campaign(shop, CampaignID(campaign_id))
    return f"Campaign {campaign_id} of {shop} is cancelled; nothing of it will be posted."


# -- coupons, redeeming, stats ----------------------------------------------------------

# "coupons" (plural) is the buyer's list of their own codes, in buyer_commands.
coupon = registry.group("coupon", help="coupon drops: personal codes for followers",
                        default="status")


@coupon.command(
    "create", help="draft a coupon drop (the same as campaign draft coupon)",
    permission=Need.EDITOR,
    examples=("coupon create 5 EUR off your next order --stock-codes 100 "
              "--expires 2026-12-31T23:59Z",))
@argument("title", rest=True, help="what the coupon gives")
@option("stock-codes", parser=integer(1, 1_000_000), metavar="N", help="how many codes")
@option("expires", parser=campaign_text.parse_time, metavar="time",
        help="when codes expire, like 2026-12-31T23:59Z")
@_draft_options
@SHOP_OPTION
async def coupon_create(ctx: ShopContext, title: str, stock_codes: int | None,
                        expires: str | None, text: str | None, link: str | None,
                        silent: bool, shop: MerchantSlug) -> str:
    return await _draft(ctx, shop, DraftInput(
        kind="coupon", title=title, text=text, link=link, stock_codes=stock_codes,
        expires=expires, silent=silent))


@coupon.command("status", help="codes claimed and redeemed for a coupon",
                permission=Need.STATS, examples=("coupon status 7",))
@argument("coupon_id", parser=campaign_text.parse_coupon_id, metavar="id",
          help="the coupon's number (its post says it), or its campaign's")
@SHOP_OPTION
async def coupon_status(ctx: ShopContext, coupon_id: int, shop: MerchantSlug) -> str:
    campaigns = await ctx.commerce.campaigns(shop)
    found = next((c for c in campaigns if c.get("coupon_id") == coupon_id), None) or next(
        (c for c in campaigns if c["id"] == coupon_id and c.get("coupon_id")), None)
    if found is None:
        raise CommandError(f"{shop} has no coupon {coupon_id}. Coupon drops are in "
                           f"{ctx.prefix}campaign list (kind coupon).")
    stats = await ctx.commerce.stats(shop)
    stat = next((s for s in stats.get("campaigns") or [] if s["id"] == found["id"]), None)
    return campaign_text.coupon_status(shop, int(found["coupon_id"]), found, stat, ctx.prefix)


@registry.command("redeem", help="redeem a buyer's coupon code, once",
                  permission=Need.TILL, examples=("redeem K7Q2M9PXWA",))
@argument("code", help="the code the buyer shows you")
@SHOP_OPTION
async def redeem(ctx: ShopContext, code: str, shop: MerchantSlug) -> str:
    result = await ctx.commerce.redeem(shop, code.strip())
    return (f"✅ {result['code']} redeemed: “{result.get('title', '')}” (coupon "
            f"{result.get('coupon')}), claimed by {result.get('user_id')}. It cannot be used "
            "again.")


@registry.command("stats", help="followers, how each campaign did, orders and revenue",
                  permission=Need.STATS)
@SHOP_OPTION
async def stats(ctx: ShopContext, shop: MerchantSlug) -> Reply:
    found = await ctx.commerce.stats(shop)
    return order_text.with_order_stats(campaign_text.stats_reply(shop, found), found)
