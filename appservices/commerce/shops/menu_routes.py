"""API routes for the shop's menu (pinned in every buyer's DM and in its channel) and its
follow reward (a coupon sent once to each new follower)."""

from __future__ import annotations

from typing import Protocol, cast

from aiohttp import web

from appservices.commerce import links
from appservices.commerce.http import STRING, ApiContext, json_body, route, staff_caller
from appservices.commerce.shops import follow_reward, menu
from appservices.commerce.shops import menu_storage as menu_rows
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.menu_delivery import ShopMenus
from appservices.commerce.shops.operations import require
from appservices.commerce.shops.roles import Action
from mercato.http_api import Spec

LINKS_SCHEMA = {"type": "array", "items": {"type": "object", "properties": {
    "label": STRING, "url": STRING}}}
REWARD_BODY = {"title": STRING, "percent_off": {"type": "integer"}, "amount_off": STRING,
               "stock": {"type": "integer"}, "expires_at": STRING}


class MenuMatrix(Protocol):
    """The commerce appservice as the menu routes use it."""

    menus: ShopMenus
    public_url: str


def _menus(ctx: ApiContext) -> MenuMatrix:
    return cast(MenuMatrix, ctx.matrix)


async def _menu_view(ctx: ApiContext, merchant: store.Merchant) -> dict:
    row = await menu_rows.shop_menu(ctx.db, merchant.slug)
    extra = menu.links_from_json(row.links) if row else ()
    return {"storefront_url": menu.storefront_url(_menus(ctx).public_url, merchant.slug),
            "links": [{"label": link.label, "url": link.url} for link in extra],
            "version": row.version if row else 0,
            **await menu_rows.counts(ctx.db, merchant.slug)}


@route("GET", "/shops/{slug}/menu", Spec(
    "The shop's menu: its own links, and in how many buyers' DMs it is sent and pinned",
    auth="staff"))
async def get_menu(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    merchant = await require(ctx.db, principal, slug,
                             Action.READ_SHOP)
    return web.json_response(await _menu_view(ctx, merchant))


@route("PUT", "/shops/{slug}/menu", Spec(
    "Set the links the shop adds to its menu (up to 5); every menu already sent is edited",
    auth="staff", body={"links": LINKS_SCHEMA}))
async def put_menu(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    merchant = await require(ctx.db, principal, slug, Action.EDIT_SHOP)
    body = await json_body(request)
    extra = menu.parse_links(body.get("links") if isinstance(body, dict) else None,
                             links.policy_for(merchant, ctx.matrix.mercato_hosts))
    edits = await _menus(ctx).menus.set_links(merchant, extra)
    await store.audit(ctx.db, merchant.slug, principal.actor, "menu_changed",
                      links=len(extra), edits=edits)
    return web.json_response({**await _menu_view(ctx, merchant), "edited": edits})


@route("GET", "/shops/{slug}/follow-reward", Spec(
    "The shop's follow reward: what it gives, how many are given and left, and followers "
    "who came after it ran out", auth="staff"))
async def get_follow_reward(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    reward = await follow_reward.get_reward(ctx.db, principal,
                                            slug)
    return web.json_response({"follow_reward": reward})


@route("PUT", "/shops/{slug}/follow-reward", Spec(
    "Send each new follower a coupon code by DM, once per Matrix account, while the stock "
    "lasts (replaces an earlier reward)", auth="staff", body=REWARD_BODY))
async def put_follow_reward(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    reward = await follow_reward.set_reward(ctx.db, ctx.matrix.mercato_hosts,
                                            principal,
                                            slug, await json_body(request))
    return web.json_response({"follow_reward": reward})


@route("DELETE", "/shops/{slug}/follow-reward", Spec(
    "Stop the follow reward (codes already sent stay valid)", auth="staff"))
async def delete_follow_reward(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    await follow_reward.stop_reward(ctx.db, principal,
                                    slug)
    return web.json_response({"stopped": True})
