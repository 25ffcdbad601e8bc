"""The shop bot's commands: merchant and buyer actions over the commerce HTTP API.

Each command is declared once; `!help` and the usage errors come from the
declarations. The API decides what a user may do; the bot checks the role first
only to answer sooner and more clearly (`authorize`, in `context`).

This module holds the shop, staff and keys commands and imports the others, so
importing it gives the whole registry: catalog (`catalog_commands`), campaigns,
coupons and stats (`campaign_commands`), what buyers do (`buyer_commands`), and carts
and orders (`order_commands`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bots.shopbot import replies
from bots.shopbot.context import ROLES, SHOP_OPTION, LeaveRoom, Need, ShopContext, registry
from mercato.commands import (
    CommandError,
    Reply,
    argument,
    https_url,
    matrix_user_id,
    one_of,
    option,
)
from mercato.types import MerchantSlug

__all__ = ["ShopContext", "registry"]


# -- everyone ---------------------------------------------------------------------------

@registry.command("ping", help="check that the bot is alive")
def ping(ctx: ShopContext) -> str:
    return "pong"


MODERATOR = 50


def may_dismiss(power_levels: dict[str, Any], user_id: str) -> tuple[bool, int]:
    """(May `user_id` make the bot leave, their power level): room moderators (50 or more)
    and whoever may kick, since they could remove the bot anyway."""
    def level(value: Any, default: int) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    users = power_levels.get("users")
    users = users if isinstance(users, dict) else {}
    mine = level(users.get(user_id), level(power_levels.get("users_default"), 0))
    kick = level(power_levels.get("kick"), MODERATOR)
    return mine >= MODERATOR or mine >= kick, mine


@registry.command(
    "leave", help="make me leave this room",
    details="In a direct chat anyone may; in a group room only its moderators (power "
            "level 50 or more, or whoever may kick). Invite me again to bring me back.",
    examples=("leave",))
async def leave(ctx: ShopContext) -> LeaveRoom:
    if not ctx.direct:
        allowed, level = may_dismiss(await ctx.bot_matrix.power_levels(ctx.room_id),
                                     ctx.sender)
        if not allowed:
            raise CommandError(
                f"Only this room's moderators (power level {MODERATOR} or more, or whoever "
                f"may kick) can make me leave; your power level here is {level}. Ask a "
                f"moderator to type {ctx.prefix}leave.")
    return LeaveRoom("Goodbye! I am leaving this room. Invite me again any time to use "
                     "the shop commands here.")


@registry.command("shops", help="browse or search the shop directory",
                  examples=("shops", "shops shoes"))
@argument("search", required=False, rest=True, help="words in a shop's name or description")
async def shops(ctx: ShopContext, search: str | None) -> Reply:
    query = (search or "").strip()
    return replies.directory(await ctx.commerce.directory(query), query, ctx.prefix)


# -- your shop --------------------------------------------------------------------------

shop = registry.group("shop", help="open a shop, see its status, change its settings",
                      default="status")


@shop.command(
    "apply", help="apply for a shop; the operator approves it",
    details="The short name (slug) becomes the shop's address, e.g. @shop_green-grocer. "
            "Add the website and a description now, or later with {prefix}shop set.",
    examples=("shop apply green-grocer Green Grocer --website https://greengrocer.example "
              "--description Fresh fruit and vegetables, delivered",))
@argument("slug", parser=replies.parse_slug, help="lowercase letters, digits and '-'")
@argument("name", rest=True, help="the shop's name as buyers see it")
@option("website", parser=https_url, metavar="https://…", help="the shop's website")
@option("description", rest=True, metavar="text",
        help="what the shop sells (everything up to the next --option)")
async def apply(ctx: ShopContext, slug: MerchantSlug, name: str, website: str | None,
                description: str | None) -> str:
    application = {"slug": slug, "name": name}
    if website:
        application["website"] = website
    if description:
        application["description"] = description
    created = await ctx.commerce.apply(application)
    lines = [f"Your application for the shop “{created['name']}” ({created['slug']}) is "
             f"received and {replies.STATUS_TEXT['pending']}.",
             f"Check it with {ctx.prefix}shop status {created['slug']}."]
    if created.get("flagged"):
        lines.append(f"Note: {created['flagged']}; the operator will look at this closely.")
    return "\n".join(lines)


@shop.command("status", help="your shops, or one shop's details",
              examples=("shop status", "shop status green-grocer"))
@argument("slug", parser=replies.parse_slug, required=False,
          help="a shop's short name (default: your shop)")
async def status(ctx: ShopContext, slug: MerchantSlug | None) -> Reply:
    mine = await ctx.commerce.my_shops()
    roles = {s["slug"]: s["role"] for s in mine}
    if slug is None:
        if not roles:
            return Reply(f"You do not work for any shop yet. Open one with {ctx.prefix}shop "
                         f"apply <slug> <name…> (see {ctx.prefix}help shop apply), or browse "
                         f"shops with {ctx.prefix}shops.")
        if len(roles) > 1:
            details = [await ctx.commerce.shop(MerchantSlug(s)) for s in roles]
            return replies.shop_table(details, roles, ctx.prefix)
        slug = MerchantSlug(next(iter(roles)))
    return replies.shop_details(await ctx.commerce.shop(slug), roles.get(slug), ctx.prefix)


settings = shop.group("set", help="change the shop's profile and automatic replies")

@dataclass(frozen=True)
class Setting:
    api_field: str
    label: str
    what: str
    parser: Any
    example: str
    metavar: str = "text"
    details: str = "Type 'off' to remove it."


def _website(value: str) -> str:
    return "" if value.strip().lower() in replies.CLEAR_WORDS else https_url(value)


SETTINGS = {
    "welcome": Setting(
        "welcome_message", "Welcome message", "the message a buyer gets on first contact",
        replies.parse_clearable, "Hello! Ask us anything about our products."),
    "away": Setting(
        "away_message", "Away message", "the reply outside opening hours",
        replies.parse_clearable, "We are closed now and answer tomorrow from 9:00."),
    "hours": Setting(
        "opening_hours", "Opening hours", "when the shop answers buyers",
        replies.parse_opening_hours, "mon-fri 09:00-18:00 sat 10:00-14:00 Europe/Paris",
        metavar="days hours",
        details="Days (mon, mon-fri, sat,sun, daily) then one or more spans; days not named "
                "are closed; the time zone anywhere (default UTC). Type 'off' to be always "
                "open."),
    "keywords": Setting(
        "keyword_replies", "Keyword replies", "automatic replies to words buyers use",
        replies.parse_keyword_replies, "delivery: We ship in 2 days; returns: 30 days to return",
        metavar="keyword: reply; …",
        details="Replaces the whole list. Separate entries with ; or new lines. Type 'off' to "
                "remove them all."),
    "name": Setting("name", "Name", "the shop's name", str.strip, "Green Grocer",
                    metavar="name", details=""),
    "description": Setting("description", "Description", "what the shop sells",
                           replies.parse_clearable, "Fresh fruit and vegetables"),
    "website": Setting(
        "website", "Website", "the shop's website", _website, "https://greengrocer.example",
        metavar="https://…",
        details="A new website must be verified again. Type 'off' to remove it."),
}


def _setting_command(word: str, setting: Setting) -> None:
    @settings.command(word, help=f"set {setting.what}", permission=Need.OWNER,
                      examples=(f"shop set {word} {setting.example}",),
                      details=setting.details)
    @argument("value", parser=setting.parser, rest=True, metavar=setting.metavar)
    @SHOP_OPTION
    async def set_value(ctx: ShopContext, value: Any, shop: MerchantSlug) -> str:
        updated = await ctx.commerce.update_shop(shop, {setting.api_field: value})
        label = setting.label
        if value in ("", [], {}):
            return f"{label} of {shop} removed."
        if word == "hours":
            return f"{label} of {shop}: {replies.format_hours(updated['opening_hours'])}."
        if word == "keywords":
            return (f"{len(updated['keyword_replies'])} keyword replies set for {shop}: "
                    + ", ".join(k["keyword"] for k in updated["keyword_replies"]) + ".")
        return f"{label} of {shop} set to: {updated.get(setting.api_field, value)}"


for _word, _setting in SETTINGS.items():
    _setting_command(_word, _setting)


# -- staff ------------------------------------------------------------------------------

staff = registry.group("staff", help="the people who work for your shop", default="list")


@staff.command("list", help="who works for the shop, and their roles",
               permission=Need.STAFF)
@SHOP_OPTION
async def staff_list(ctx: ShopContext, shop: MerchantSlug) -> Reply:
    return replies.staff_table(shop, await ctx.commerce.staff(shop))


@staff.command("add", help="add someone (any homeserver) or change their role",
               permission=Need.OWNER,
               details="Roles: owner (everything), editor (products, campaigns), support "
                       "(answers buyers), analyst (reads stats).",
               examples=("staff add @alice:example.org editor",))
@argument("user", parser=matrix_user_id, metavar="@user:server")
@argument("role", parser=one_of(*ROLES), metavar="|".join(ROLES))
@SHOP_OPTION
async def staff_add(ctx: ShopContext, user: str, role: str, shop: MerchantSlug) -> str:
    member = await ctx.commerce.add_staff(shop, user, role)
    lines = [f"{member['user_id']} is now {member['role']} of {shop}."]
    invite = member.get("staff_room_invite")
    if member.get("warning"):
        lines.append(member["warning"])
    elif invite == "sent":
        lines.append("They are invited to the shop's staff room.")
    elif invite == "after_approval":
        lines.append("They will be invited to the shop's staff room once the shop is "
                     "approved.")
    return " ".join(lines)


@staff.command("remove", help="remove someone from the shop", permission=Need.OWNER,
               examples=("staff remove @alice:example.org",))
@argument("user", parser=matrix_user_id, metavar="@user:server")
@SHOP_OPTION
async def staff_remove(ctx: ShopContext, user: str, shop: MerchantSlug) -> str:
    await ctx.commerce.remove_staff(shop, user)
    return f"{user} no longer works for {shop}."


# -- API keys ---------------------------------------------------------------------------

keys = registry.group("keys", help="API keys for your shop's own software", default="list")


@keys.command("create", help="create an API key (shown once; direct chat only)",
              permission=Need.OWNER, direct_only=True,
              examples=("keys create Web shop sync", "keys create Stats export --role analyst"))
@argument("label", rest=True, help="what the key is for")
@option("role", parser=one_of(*ROLES), metavar="|".join(ROLES),
        help="what the key may do (default: editor)")
@SHOP_OPTION
async def keys_create(ctx: ShopContext, label: str, role: str | None, shop: MerchantSlug) -> Reply:
    created = await ctx.commerce.create_key(shop, label, role or "editor")
    return replies.new_key(shop, created, ctx.prefix)


@keys.command("list", help="the shop's API keys (never the keys themselves)",
              permission=Need.OWNER)
@SHOP_OPTION
async def keys_list(ctx: ShopContext, shop: MerchantSlug) -> Reply:
    return replies.keys_table(shop, await ctx.commerce.keys(shop), ctx.prefix)


@keys.command("revoke", help="revoke an API key; software using it stops working",
              permission=Need.OWNER, examples=("keys revoke 1a2b3c4d",))
@argument("key_id", metavar="key-id", help="the ID shown by {prefix}keys list")
@SHOP_OPTION
async def keys_revoke(ctx: ShopContext, key_id: str, shop: MerchantSlug) -> str:
    await ctx.commerce.revoke_key(shop, key_id)
    return f"API key {key_id} of {shop} is revoked."


# The other command modules declare on the same registry when imported.
from bots.shopbot import (  # noqa: E402,F401
    buyer_commands,
    campaign_commands,
    catalog_commands,
    circle_commands,
    order_commands,
    web_commands,
)
