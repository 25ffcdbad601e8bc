"""The Circle from any client: `circle on|off|status|approve|remove`, `recommend` and
`digest on|off`, each a call to the commerce API for the sender; and the daily digest,
sent in the DM where the user turned it on (commerce decides when one is due).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from bots.shopbot.api import ApiError, CommerceApi
from bots.shopbot.buyer_commands import SHOP_ARGUMENT, SKU_ARGUMENT
from bots.shopbot.context import ShopContext, registry
from mercato.commands import argument, matrix_user_id
from mercato.logging import get_logger
from mercato.types import MerchantSlug, Sku

log = get_logger(__name__)


circle = registry.group("circle", help="share finds with your friends: your Circle",
                        default="status")
digest = registry.group("digest", help="a daily message with what is new in your Circle")


def circle_text(view: dict[str, Any]) -> str:
    if not view.get("opted_in"):
        return "Your Circle is off. Type circle on to share finds with your friends."
    friends = view.get("friends") or []
    knocking = view.get("knocking") or []
    lines = [f"Your Circle is on: {len(friends)} friend(s) in your circle room."]
    if view.get("invited"):
        lines.append(f"Invited, not joined yet: {', '.join(view['invited'])}.")
    if knocking:
        lines.append(f"Asking to join: {', '.join(knocking)} — type circle approve <user>.")
    lines.append(f"Daily digest: {'on' if view.get('digest') else 'off'}.")
    return "\n".join(lines)


@circle.command("on", help="share your finds with your friends (your Circle)",
                  details="Makes your circle room (only you post there) and a Space named "
                          "Circle with the channels you follow and your friends' circles; "
                          "friends the contacts bridge found who are in the Circle too are "
                          "invited to each other's rooms. Anyone else can ask to join.")
async def circle_on(ctx: ShopContext) -> str:
    view = await ctx.commerce.api.request("POST", "/me/circle", ctx.commerce.user_id, body={})
    return circle_text(view) + "\nAccept the invitations to your circle room and Space."


@circle.command("off", help="leave the Circle (nothing of your friends is deleted)")
async def circle_off(ctx: ShopContext) -> str:
    await ctx.commerce.api.request("DELETE", "/me/circle", ctx.commerce.user_id)
    return ("You left the Circle: out of your friends' circle rooms, and they out of yours. "
            "Type circle on to come back.")


@circle.command("status", help="who is in your Circle, and who asks to join")
async def circle_status(ctx: ShopContext) -> str:
    return circle_text(await ctx.commerce.api.request("GET", "/me/circle",
                                                      ctx.commerce.user_id))


@circle.command("approve", help="let someone into your circle room",
                  examples=("circle approve @kari:example.org",))
@argument("user", parser=matrix_user_id, help="their Matrix ID")
async def circle_approve(ctx: ShopContext, user: str) -> str:
    await ctx.commerce.api.request("POST", "/me/circle/friends", ctx.commerce.user_id,
                                   body={"user_id": user})
    return f"{user} is invited to your circle room."


@circle.command("remove", help="take someone out of your circle room",
                  examples=("circle remove @kari:example.org",))
@argument("user", parser=matrix_user_id, help="their Matrix ID")
async def circle_remove(ctx: ShopContext, user: str) -> str:
    await ctx.commerce.api.request("DELETE", f"/me/circle/friends/{quote(user, safe='')}",
                                   ctx.commerce.user_id)
    return f"{user} is out of your circle room."


@registry.command("recommend", help="recommend a product to your friends, in your Circle",
                  examples=("recommend green-grocer apples-1 Crisp and sweet",))
@SHOP_ARGUMENT
@SKU_ARGUMENT
@argument("note", required=False, rest=True, help="a line of your own")
async def recommend(ctx: ShopContext, shop: MerchantSlug, sku: Sku, note: str = "") -> str:
    await ctx.commerce.api.request("POST", "/me/circle/recommendations", ctx.commerce.user_id,
                                   body={"shop": shop, "sku": sku, "note": note or ""})
    return f"Recommended {sku} of {shop} in your circle room: your friends see it there."


@digest.command("on", help="a daily message here with what is new in your Circle",
                  direct_only=True)
async def digest_on(ctx: ShopContext) -> str:
    await ctx.commerce.api.request("PUT", "/me/circle/digest", ctx.commerce.user_id,
                                   body={"enabled": True, "room_id": ctx.room_id})
    return ("Digest on: at most one message a day, here, and only when your Circle has "
            "something new. Type digest off to stop.")


@digest.command("off", help="no more daily Circle digest")
async def digest_off(ctx: ShopContext) -> str:
    await ctx.commerce.api.request("PUT", "/me/circle/digest", ctx.commerce.user_id,
                                   body={"enabled": False})
    return "Digest off."


async def send_digests(api: CommerceApi, bot_user_id: str, now_ms: int,
                       send: Callable[[str, str], Awaitable[None]]) -> int:
    """One pass: each subscriber's digest if commerce says one is due at `now_ms` (the
    bot's clock, settable in tests); `send(room_id, text)` posts it. How many were sent."""
    answer = await api.request("GET", "/circle/digest-subscribers", bot_user_id)
    sent = 0
    for user_id in answer.get("users", []):
        try:
            due = await api.request("POST", "/me/circle/digest/next", user_id,
                                    params={"at": str(now_ms)})
        except ApiError as e:
            log.warning("circle.digest_failed", user_id=user_id, error=str(e))
            continue
        if due.get("due"):
            await send(str(due["room_id"]), str(due["text"]))
            sent += 1
    return sent
