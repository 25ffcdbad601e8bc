"""API routes of the shop's webhook: its endpoint, its secret, its delivery log."""

from __future__ import annotations

from aiohttp import web

from appservices.commerce.http import STRING, json_body, route, staff_caller
from appservices.commerce.webhooks import operations, rules
from mercato.http_api import Spec, query_number

WEBHOOK_BODY = {"url": STRING, "events": {"type": "array", "items": STRING}}


@route("PUT", "/shops/{slug}/webhook", Spec(
    "Set the https:// endpoint the shop's events are POSTed to; a new one answers its "
    "signing secret, once", auth="staff", body=WEBHOOK_BODY))
async def put_webhook(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    view = await operations.set_endpoint(ctx.db, principal,
                                         slug, await json_body(request))
    return web.json_response(view)


@route("GET", "/shops/{slug}/webhook", Spec("The shop's webhook endpoint (not its secret)",
                                            auth="staff"))
async def get_webhook(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    return web.json_response(await operations.get_endpoint(
        ctx.db, principal, slug))


@route("DELETE", "/shops/{slug}/webhook", Spec(
    "Remove the shop's webhook; deliveries still waiting are cancelled", auth="staff"))
async def delete_webhook(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    return web.json_response(await operations.remove_endpoint(
        ctx.db, principal, slug))


@route("POST", "/shops/{slug}/webhook/secret", Spec(
    "A new signing secret, answered once; the old one stops signing at once", auth="staff"))
async def rotate_secret(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    return web.json_response(await operations.rotate_secret(
        ctx.db, principal, slug))


@route("GET", "/shops/{slug}/webhook/deliveries", Spec(
    "The webhook's delivery log, newest first", auth="staff", query={
        "status": f"only deliveries in this state: {', '.join(rules.STATES)}",
        "before": "only deliveries older than this id",
        "limit": "how many deliveries, 1 to 500 (100)"}))
async def list_deliveries(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    return web.json_response(await operations.deliveries(
        ctx.db, principal, slug,
        status=request.query.get("status") or None,
        before=query_number(request, "before", default=None, low=1),
        limit=query_number(request, "limit", default=100, low=1, high=500)))


@route("POST", "/shops/{slug}/webhook/deliveries/{event_id}/resend", Spec(
    "Send an event again, with the same event ID", auth="staff"))
async def resend(request: web.Request) -> web.Response:
    ctx, principal, slug = await staff_caller(request)
    return web.json_response(await operations.resend(
        ctx.db, principal, slug,
        request.match_info["event_id"]))
