"""The console's campaigns: a composer for every kind of post (product, sale, coupon drop,
text, image, silent notice) with a live preview that is the card followers will receive —
rendered by the campaign post's own renderer and sanitised by the Matrix HTML allowlist —
the link rules' verdict and the posts left in the shop's daily quota; scheduling in the
shop's timezone, cancel and retract, and each campaign's results.

Every change calls the campaigns' own operations as the signed-in user (create_campaign,
schedule, cancel, retract: what /api/v1 calls). With JavaScript (htmx) the preview follows
the typing; without, the "Preview" button posts the draft and the page shows it.
"""

from __future__ import annotations

import time
from typing import Any, cast
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup

from appservices.commerce import images, links
from appservices.commerce.campaigns import operations, rules
from appservices.commerce.campaigns import stats as campaign_stats
from appservices.commerce.campaigns import storage as rows
from appservices.commerce.quotas import DAY_MS
from appservices.commerce.shops.roles import Action
from appservices.commerce.web.console import (
    ConsoleContext,
    Section,
    add_section,
    console_form,
    console_page,
    render_console,
    wants_fragment,
)
from appservices.commerce.web.console_campaign_rules import (
    COMPOSER_KINDS,
    draft_body,
    input_time,
    local_time,
    shop_timezone,
    shown_time,
)
from appservices.commerce.web.errors import WebError
from mercato.http_api import ApiError
from mercato.logging import get_logger
from mercato.values import InvalidValue

log = get_logger(__name__)

Refusal = (ApiError, InvalidValue)


def _slug(request: web.Request) -> str:
    return request.match_info["slug"]


async def quota_left(cc: ConsoleContext) -> int:
    """Posts the shop may still send in the 24 hours around now."""
    used, _ = await rows.sends_around(cc.api.db, cc.slug, int(time.time() * 1000), DAY_MS, 0)
    return rules.quota_left(cc.merchant.daily_post_quota, used)


def preview_of(cc: ConsoleContext, body: dict[str, Any]) -> dict[str, Any]:
    """The card a draft makes (as the post renders it), the link rules' verdict, or what
    keeps the draft from being a post yet."""
    try:
        fields = rules.validate_fields(body["kind"], body["fields"])
    except Refusal as e:
        return {"html": "", "problem": e.message, "warnings": [], "msgtype": ""}
    warnings = []
    try:
        links.check_links(list(fields.values()),
                          links.policy_for(cc.merchant, cc.api.matrix.mercato_hosts))
    except Refusal as e:
        warnings.append(e.message)
    coupon = body.get("coupon")
    coupon_view = {"id": "N", "stock": coupon.get("stock") or "…", "title": fields["title"],
                   "expires": "the date you set"} if coupon is not None else None
    content = rules.render_post(
        body["kind"], fields, shop_name=cc.merchant.name, shop_mxid=cc.merchant.mxid,
        verified=cc.merchant.verified, campaign_id=0, silent=body.get("silent", False),
        coupon=coupon_view)
    # render_post has sanitised it with the Matrix allowlist: it is the card as sent.
    return {"html": Markup(content["formatted_body"]), "problem": "", "warnings": warnings,
            "msgtype": content["msgtype"]}


async def campaigns_page(request: web.Request) -> web.Response:
    cc = await console_page(request, _slug(request), Action.RUN_CAMPAIGNS)
    return await _render_campaigns(request, cc, {})


async def _render_campaigns(request: web.Request, cc: ConsoleContext, form: Any, *,
                            status: int = 200, error: str = "",
                            preview: dict[str, Any] | None = None) -> web.Response:
    zone = shop_timezone(cc.merchant.opening_hours)
    results = {c["id"]: c for c in (await campaign_stats.stats(
        cc.api.db, cc.principal, cc.slug, 1))["campaigns"]} if cc.can(Action.READ_STATS) else {}
    listed = [{"c": c, "when": shown_time(c.sent_at or c.scheduled_at, zone),
               "results": results.get(c.id)} for c in await rows.campaigns_of(cc.api.db, cc.slug)]
    return await render_console(
        request, cc, "console/campaigns.html.j2", status=status, campaigns=listed,
        kinds=COMPOSER_KINDS, form=form, error=error, preview=preview,
        quota_left=await quota_left(cc), zone=zone.key,
        max_image_mib=images.MAX_IMAGE_BYTES // 2**20)


async def preview(request: web.Request) -> web.Response:
    """The draft's card: htmx swaps it in as the merchant types; without JavaScript the
    composer comes back with it."""
    cc, form = await console_form(request, _slug(request), Action.RUN_CAMPAIGNS)
    zone = shop_timezone(cc.merchant.opening_hours)
    try:
        shown = preview_of(cc, draft_body(form, zone))
    except Refusal as e:
        shown = {"html": "", "problem": e.message, "warnings": [], "msgtype": ""}
    if wants_fragment(request):
        return await render_console(request, cc, "console/campaign_preview.html.j2",
                                    preview=shown, quota_left=await quota_left(cc))
    return await _render_campaigns(request, cc, form, preview=shown)


async def create(request: web.Request) -> web.StreamResponse:
    """Draft the campaign (with its photo), then schedule it unless only a draft was asked
    for: at the time typed in the shop's zone, or now."""
    cc, form = await console_form(request, _slug(request), Action.RUN_CAMPAIGNS)
    zone = shop_timezone(cc.merchant.opening_hours)
    try:
        body = draft_body(form, zone)
        rules.validate_fields(body["kind"], body["fields"])  # before the photo is stored
        photo = form.get("image")
        if isinstance(photo, web.FileField) and photo.filename:
            stored = await images.store_image(cast(images.ImageStore, cc.api.matrix),
                                              cc.merchant,
                                              photo.file.read(images.MAX_IMAGE_BYTES + 1),
                                              "image")
            body.update(stored)
        elif form.get("kind") == "image":
            raise InvalidValue("image", "an image post needs a photo: choose one")
        campaign = await operations.create_campaign(cc.api.db, cc.api.matrix, cc.principal,
                                                    cc.slug, body)
    except Refusal as e:
        return await _render_campaigns(request, cc, form, status=422, error=e.message)
    log.info("console.campaign_drafted", shop=cc.slug, campaign=campaign.id, user_id=cc.user)
    if form.get("action") != "draft":
        try:
            await operations.schedule(cc.api.db, cc.api.matrix, cc.principal, cc.slug,
                                      campaign.id, _at(form, zone))
        except Refusal as e:
            raise web.HTTPSeeOther(cc.url(f"campaigns/{campaign.id}?problem=" +
                                          _quoted(e.message))) from None
    raise web.HTTPSeeOther(cc.url(f"campaigns/{campaign.id}"))


def _at(form: Any, zone: ZoneInfo) -> str:
    return local_time("at", str(form.get("at", "") or ""), zone)


def _quoted(text: str) -> str:
    return quote(text[:300])


async def _campaign_or_404(request: web.Request, cc: ConsoleContext) -> rows.Campaign:
    raw = request.match_info["campaign_id"]
    try:
        _, campaign = await operations.get_campaign(cc.api.db, cc.principal, cc.slug,
                                                    int(raw) if raw.isdigit() else -1)
    except Refusal as e:
        raise WebError(404, "No such campaign", e.message, action_href=cc.url("campaigns"),
                       action_text="Campaigns") from None
    return campaign


async def campaign_page(request: web.Request, *, status: int = 200,
                        problem: str = "") -> web.Response:
    cc = await console_page(request, _slug(request), Action.RUN_CAMPAIGNS)
    campaign = await _campaign_or_404(request, cc)
    zone = shop_timezone(cc.merchant.opening_hours)
    content = await operations.render_campaign(cc.api.db, cc.merchant, campaign)
    results = None
    if cc.can(Action.READ_STATS):
        numbers = await campaign_stats.stats(cc.api.db, cc.principal, cc.slug, 1)
        results = next((c for c in numbers["campaigns"] if c["id"] == campaign.id), None)
    return await render_console(
        request, cc, "console/campaign.html.j2", status=status, campaign=campaign,
        card=Markup(content["formatted_body"]), msgtype=content["msgtype"], results=results,
        scheduled=shown_time(campaign.scheduled_at, zone), sent=shown_time(campaign.sent_at, zone),
        default_at=input_time(int(time.time() * 1000) + 3600_000, zone), zone=zone.key,
        problem=problem or request.query.get("problem", "")[:300],
        quota_left=await quota_left(cc))


async def change(request: web.Request) -> web.StreamResponse:
    """Schedule (at a time in the shop's zone, or now), cancel or retract a campaign."""
    cc, form = await console_form(request, _slug(request), Action.RUN_CAMPAIGNS)
    campaign = await _campaign_or_404(request, cc)
    zone = shop_timezone(cc.merchant.opening_hours)
    action = form.get("action")
    try:
        if action == "schedule":
            await operations.schedule(cc.api.db, cc.api.matrix, cc.principal, cc.slug,
                                      campaign.id, _at(form, zone))
        elif action == "cancel":
            await operations.cancel(cc.api.db, cc.principal, cc.slug, campaign.id)
        elif action == "retract":
            await operations.retract(cc.api.db, cc.api.matrix, cc.principal, cc.slug,
                                     campaign.id)
        else:
            raise InvalidValue("action", "choose schedule, cancel or retract")
    except Refusal as e:
        return await campaign_page(request, status=422, problem=e.message)
    log.info("console.campaign_changed", shop=cc.slug, campaign=campaign.id, action=action)
    raise web.HTTPSeeOther(cc.url(f"campaigns/{campaign.id}"))


def add_routes(app: web.Application) -> None:
    add_section(app, Section("campaigns", "Campaigns", "campaigns", (Action.RUN_CAMPAIGNS,), 30))
    app.router.add_get("/console/{slug}/campaigns", campaigns_page)
    app.router.add_post("/console/{slug}/campaigns", create)
    app.router.add_post("/console/{slug}/campaigns/preview", preview)
    app.router.add_get("/console/{slug}/campaigns/{campaign_id}", campaign_page)
    app.router.add_post("/console/{slug}/campaigns/{campaign_id}", change)
