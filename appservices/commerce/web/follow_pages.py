"""The follow-from-paper pages, outside /api/v1: a shop's QR code (`/s/<slug>/qr`), a
printable A6 insert for parcels (`/s/<slug>/poster`), and the counted link the poster's
QR code holds (`/s/<slug>/follow?from=poster`), which counts the scan and sends the
browser on to the channel's matrix.to link.

Matrix tells nobody through which link or alias a room was joined, so a follow is
counted as from the poster only when the visitor was signed in to Mercato's web pages
when they opened the link (then their follow within a week is theirs); scans are counted
per day, whoever scans. docs/follow-from-paper.md says what this can and cannot tell.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from appservices.commerce.http import CONTEXT, ApiContext
from appservices.commerce.shops import follow_reward, qr
from appservices.commerce.shops import follow_storage as rows
from appservices.commerce.shops import storage as store
from appservices.commerce.web import page
from appservices.commerce.web.sessions import signed_in_user
from mercato.logging import get_logger
from mercato.types import MerchantSlug

log = get_logger(__name__)

# Link previews and crawlers fetch a link pasted in a chat: they are not people scanning.
NOT_PEOPLE = ("bot", "synapse", "preview", "crawler", "spider", "facebookexternalhit")
SOURCES = (qr.POSTER_SOURCE,)


async def _shop(ctx: ApiContext, slug: str) -> tuple[store.Merchant, str]:
    """An open shop and its primary channel's alias; 404 for anything else."""
    merchant = await store.get_merchant(ctx.db, MerchantSlug(slug))
    if merchant is None or merchant.status != "approved":
        raise web.HTTPNotFound(text=f"There is no open shop called {slug}.\n")
    channel = next((c for c in await store.channels_of(ctx.db, merchant.slug)
                    if c.is_primary), None)
    if channel is None:
        raise web.HTTPNotFound(text=f"{merchant.name} has no channel yet.\n")
    return merchant, channel.alias


async def qr_code(request: web.Request) -> web.Response:
    """The channel's QR code: PNG, or SVG with ?format=svg; ?from=poster holds the
    counted link instead of the matrix.to link."""
    ctx = request.app[CONTEXT]
    merchant, alias = await _shop(ctx, request.match_info["slug"])
    source = request.query.get("from", "")
    data = (qr.counted_link(ctx.matrix.public_url, merchant.slug, source)
            if source in SOURCES else qr.channel_link(alias))
    kind = request.query.get("format", "png")
    if kind not in ("png", "svg"):
        raise web.HTTPBadRequest(text="format is png or svg.\n")
    headers = {"Cache-Control": "max-age=3600",
               "Content-Disposition": f'inline; filename="{merchant.slug}-qr.{kind}"'}
    if kind == "svg":
        return web.Response(text=qr.svg(data), content_type="image/svg+xml", headers=headers)
    return web.Response(body=qr.png(data), content_type="image/png", headers=headers)


async def poster(request: web.Request) -> web.Response:
    """A printable A6 card for parcels: name, ✓, the QR code and the offer."""
    ctx = request.app[CONTEXT]
    merchant, alias = await _shop(ctx, request.match_info["slug"])
    reward = await rows.reward_of(ctx.db, merchant.slug)
    now = int(datetime.now(UTC).timestamp() * 1000)
    return await page.render(
        request, "follow/poster.html.j2", shop_name=merchant.name, verified=merchant.verified,
        alias=alias, server_name=ctx.matrix.config.server_name,
        description=merchant.description, offer=follow_reward.offer_text(reward, now),
        discount=follow_reward.discount_text(reward.percent_off, reward.amount_off)
        if reward else "",
        qr_svg=qr.svg(qr.counted_link(ctx.matrix.public_url, merchant.slug), inline=True))


async def follow(request: web.Request) -> web.Response:
    """A scan of a printed QR code: counted, then on to the channel in the scanner's
    Matrix client."""
    ctx = request.app[CONTEXT]
    merchant, alias = await _shop(ctx, request.match_info["slug"])
    source = request.query.get("from", "")
    agent = request.headers.get("User-Agent", "").lower()
    if source in SOURCES and not any(word in agent for word in NOT_PEOPLE):
        now = datetime.now(UTC)
        await rows.add_scan(ctx.db, merchant.slug, now.date().isoformat(), source)
        user_id = await signed_in_user(request)
        if user_id:
            await rows.put_visit(ctx.db, merchant.slug, user_id, source,
                                 int(now.timestamp() * 1000))
        log.info("follow.scan", shop=merchant.slug, source=source, signed_in=bool(user_id))
    raise web.HTTPSeeOther(qr.channel_link(alias), headers={"Cache-Control": "no-store"})


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/s/{slug}/qr", qr_code)
    app.router.add_get("/s/{slug}/poster", poster)
    app.router.add_get("/s/{slug}/follow", follow)
