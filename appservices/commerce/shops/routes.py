"""The shop routes: the directory, applications and the operator's decisions, verification,
staff, API keys and the audit log. Each is declared once with what the OpenAPI document says
of it."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
from aiohttp import web

from appservices.commerce.auth import require_principal, require_user
from appservices.commerce.errors import InvalidInput, NotFound
from appservices.commerce.http import (
    STRING,
    ApiContext,
    caller,
    json_body,
    route,
    signed_in_caller,
    staff_caller,
)
from appservices.commerce.shops import operations as merchants
from appservices.commerce.shops import staff, views
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.roles import Action
from mercato.http_api import Spec, query_number


async def _shop_view(ctx: ApiContext, merchant: store.Merchant, private: bool) -> dict[str, Any]:
    channels = await store.channels_of(ctx.db, merchant.slug)
    return (views.shop_private if private else views.shop_public)(merchant, channels)


SHOP_FIELDS = {"name": STRING, "description": STRING, "website": STRING, "avatar_url": STRING}


# -- directory and shops ----------------------------------------------------------------

@route("GET", "/shops", Spec("The shop directory: approved shops, verified first; ?q= searches",
                             auth="none", query={
                                 "q": "words to find in the slug, name or description",
                                 "status": "pending, rejected or suspended (operator only)"}))
async def list_shops(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    status = request.query.get("status", "approved")
    if status != "approved":
        merchants.require_operator(require_principal(principal))
    query = request.query.get("q", "").casefold().strip()
    found = []
    for merchant in await store.list_merchants(ctx.db, status=status):
        text = f"{merchant.slug} {merchant.name} {merchant.description}".casefold()
        if query and query not in text:
            continue
        found.append(await _shop_view(ctx, merchant, private=status != "approved"))
    found.sort(key=lambda shop: (not shop["verified"], shop["slug"]))
    return web.json_response({"shops": found})


@route("POST", "/shops", Spec("Apply for a shop (it waits for the operator's approval)",
                              auth="any", success=201,
                              body={"slug": STRING, **SHOP_FIELDS, "owner": STRING}))
async def apply_for_shop(request: web.Request) -> web.Response:
    ctx, principal = await signed_in_caller(request)
    merchant = await merchants.apply(ctx.db, ctx.matrix, principal,
                                     await json_body(request))
    return web.json_response(await _shop_view(ctx, merchant, private=True), status=201)


@route("GET", "/shops/{slug}", Spec("One shop; staff and the operator see everything",
                                    auth="none"))
async def get_shop(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    merchant = await merchants.get_shop(ctx.db, request.match_info["slug"])
    private = principal is not None and (
        principal.is_operator or await merchants.role_of(ctx.db, principal, merchant.slug))
    if merchant.status != "approved" and not private:
        raise NotFound(f"There is no shop '{merchant.slug}'.")
    return web.json_response(await _shop_view(ctx, merchant, private=bool(private)))


@route("PATCH", "/shops/{slug}", Spec("Change the shop's profile or customer-service settings",
                                      auth="staff", body={
                                          **SHOP_FIELDS, "welcome_message": STRING,
                                          "away_message": STRING,
                                          "opening_hours": {"type": "object"},
                                          "keyword_replies": {"type": "array"}}))
async def update_shop(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    merchant = await merchants.update_shop(ctx.db, ctx.matrix, principal,
                                           slug, await json_body(request))
    return web.json_response(await _shop_view(ctx, merchant, private=True))


@route("GET", "/merchant", Spec("The shop an API key belongs to, with follower counts",
                                auth="staff"))
async def own_shop(request: web.Request) -> web.Response:
    ctx, principal = await signed_in_caller(request)
    if principal.kind != "api_key":
        raise InvalidInput("Authorization", "this endpoint takes a shop's API key")
    merchant = await merchants.require(ctx.db, principal, principal.key_slug, Action.READ_SHOP)
    view = await _shop_view(ctx, merchant, private=True)
    view["followers"] = await store.follower_count(ctx.db, merchant.slug)
    view["channels"] = [
        {"room_id": c.room_id, "alias": c.alias, "name": c.name, "primary": bool(c.is_primary),
         "followers": await store.room_follower_count(ctx.db, c.room_id)}
        for c in await store.channels_of(ctx.db, merchant.slug)]
    return web.json_response(view)


@route("GET", "/me/shops", Spec("The shops the acting Matrix user works for", auth="any"))
async def my_shops(request: web.Request) -> web.Response:
    ctx, principal = await caller(request)
    principal = require_user(principal, "this endpoint is for a Matrix user")
    return web.json_response({"shops": [
        {"slug": slug, "role": role}
        for slug, role in await store.shops_of_user(ctx.db, principal.user_id)]})


# -- operator decisions -----------------------------------------------------------------

def _decision_route(decision: str, summary: str) -> None:
    async def decide(request: web.Request) -> web.Response:
        ctx, principal = await caller(request)
        body = await json_body(request)
        reason = body.get("reason", "") if isinstance(body, dict) else ""
        merchant = await merchants.change_status(
            ctx.db, ctx.matrix, require_principal(principal), request.match_info["slug"],
            decision, reason)
        return web.json_response(await _shop_view(ctx, merchant, private=True))

    decide.__name__ = f"{decision}_shop"
    route("POST", f"/shops/{{slug}}/{decision}",
          Spec(summary, auth="operator", body={"reason": STRING}))(decide)


_decision_route("approve", "Approve an application: creates the shop's Matrix user and rooms")
_decision_route("reject", "Reject an application")
_decision_route("suspend", "Suspend a shop: it can post nothing and its rooms say so")
_decision_route("reinstate", "Lift a suspension")


@route("POST", "/shops/{slug}/verify", Spec("Mark a shop verified by the operator",
                                            auth="operator"))
async def verify_shop(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    merchants.require_operator(principal)
    merchant = await merchants.verify(ctx.db, ctx.matrix, principal, slug)
    return web.json_response(await _shop_view(ctx, merchant, private=True))


@route("POST", "/shops/{slug}/domain-proof", Spec(
    "Get the token to publish at https://<website>/.well-known/mercato-verification",
    auth="staff"))
async def start_domain_proof(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    return web.json_response(await merchants.start_domain_proof(
        ctx.db, principal, slug))


@route("POST", "/shops/{slug}/domain-proof/check", Spec(
    "Check the published token; the shop becomes verified when it matches", auth="staff"))
async def check_domain_proof(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)

    async def fetch(url: str) -> str:
        ssl_context = ssl.create_default_context()
        if ctx.config.domain_proof_ca_file:
            ssl_context.load_verify_locations(ctx.config.domain_proof_ca_file)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(url, ssl=ssl_context, allow_redirects=False) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return (await resp.content.read(4096)).decode("utf-8", "replace")

    merchant = await merchants.check_domain_proof(
        ctx.db, ctx.matrix, principal, slug, fetch)
    return web.json_response(await _shop_view(ctx, merchant, private=True))


# -- staff ------------------------------------------------------------------------------

@route("GET", "/shops/{slug}/staff", Spec("List the shop's staff and their roles", auth="staff"))
async def list_staff(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    await merchants.require(ctx.db, principal, slug, Action.READ_SHOP)
    return web.json_response({"staff": [views.staff_member(m)
                                        for m in await store.staff_of(ctx.db, slug)]})


@route("POST", "/shops/{slug}/staff", Spec(
    "Add a staff member (any homeserver) or change their role: owner, editor, support, analyst",
    auth="staff", success=201, body={"user_id": STRING, "role": STRING}))
async def add_staff(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("body", "send {\"user_id\": …, \"role\": …}")
    change = await staff.add_staff(ctx.db, ctx.matrix, principal,
                                       slug, body.get("user_id"),
                                       body.get("role"))
    return web.json_response({**views.staff_member(change.member),
                              "staff_room_invite": change.staff_room_invite,
                              "warning": change.warning or None}, status=201)


@route("DELETE", "/shops/{slug}/staff/{user_id}", Spec("Remove a staff member", auth="staff"))
async def remove_staff(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    await staff.remove_staff(ctx.db, ctx.matrix, principal,
                                 slug, request.match_info["user_id"])
    return web.json_response({})


# -- API keys ---------------------------------------------------------------------------

@route("GET", "/shops/{slug}/keys", Spec("List API keys (never the keys themselves)",
                                         auth="staff"))
async def list_keys(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    await merchants.require(ctx.db, principal, slug, Action.MANAGE_KEYS)
    return web.json_response({"keys": [views.api_key(k)
                                       for k in await store.list_api_keys(ctx.db, slug)]})


@route("POST", "/shops/{slug}/keys", Spec("Create an API key; the key is shown only in this "
                                          "answer", auth="staff", success=201,
                                          body={"label": STRING, "role": STRING}))
async def create_key(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("body", "send {\"label\": …, \"role\": …}")
    key, secret = await staff.create_api_key(
        ctx.db, principal, slug, body.get("label"),
        body.get("role", "editor"))
    return web.json_response({**views.api_key(key), "key": secret}, status=201)


@route("DELETE", "/shops/{slug}/keys/{key_id}", Spec("Revoke an API key", auth="staff"))
async def revoke_key(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    await staff.revoke_api_key(ctx.db, principal,
                                   slug, request.match_info["key_id"])
    return web.json_response({})


# -- audit log --------------------------------------------------------------------------

@route("GET", "/shops/{slug}/audit", Spec("The shop's audit log, newest first; ?before=<id>",
                                          auth="staff", query={
                                              "before": "only entries older than this id",
                                              "limit": "how many entries, 1 to 500 (100)"}))
async def audit_log(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    await merchants.require(ctx.db, principal, slug, Action.READ_AUDIT)
    before = query_number(request, "before", default=None, low=1)
    limit = query_number(request, "limit", default=100, low=1, high=500)
    entries = await store.audit_log(ctx.db, slug, limit=limit, before=before)
    return web.json_response({"entries": [views.audit_entry(e) for e in entries]})
