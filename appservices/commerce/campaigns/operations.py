"""Campaign operations: draft, preview, schedule, cancel, retract.

Called by the HTTP API (and through it the bot). Matrix effects go through the
`BroadcastMatrix` port; sending itself is the delivery worker's job (delivery.py); a
drop's coupon codes are coupons.py's, the numbers stats.py's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol

from appservices.commerce import links
from appservices.commerce.campaigns import rules as campaigns
from appservices.commerce.campaigns import storage as rows
from appservices.commerce.errors import Conflict, Forbidden, InvalidInput, NotFound
from appservices.commerce.quotas import DAY_MS
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, require
from appservices.commerce.shops.roles import Action
from mercato.db import Database, transaction
from mercato.logging import get_logger
from mercato.values import json_kind

log = get_logger(__name__)

MAX_COUPON_STOCK = 1_000_000


class BroadcastMatrix(Protocol):
    mercato_hosts: tuple[str, ...]

    async def send_preview(self, merchant: store.Merchant, content: dict[str, Any],
                           campaign_id: int) -> str: ...

    async def retract_post(self, merchant: store.Merchant, room_id: str, event_id: str,
                           reason: str) -> None: ...

    async def send_coupon_code(self, merchant: store.Merchant, user_id: str,
                               text: str, code: str) -> tuple[str, str]: ...

    def wake_outbox(self) -> None: ...


def _coupon_view(coupon: dict[str, Any] | None) -> dict[str, Any] | None:
    if coupon is None:
        return None
    expires = datetime.fromtimestamp(coupon["expires_at"] / 1000, UTC)
    return {"id": coupon["id"], "stock": coupon["stock"], "title": coupon["title"],
            "expires": f"{expires:%Y-%m-%d %H:%M} UTC",
            "percent_off": coupon.get("percent_off"), "amount_off": coupon.get("amount_off")}


async def render_campaign(db: Database, merchant: store.Merchant,
                          campaign: rows.Campaign) -> dict[str, Any]:
    coupon = await rows.get_coupon(db, campaign.coupon_id) if campaign.coupon_id else None
    return campaigns.render_post(
        campaign.kind, campaign.fields, shop_name=merchant.name, shop_mxid=merchant.mxid,
        verified=merchant.verified, campaign_id=campaign.id, image_mxc=campaign.image_mxc,
        image_info=campaign.image_info, silent=campaign.silent, coupon=_coupon_view(coupon))


async def _target_rooms(db: Database, slug: str, channel_ids: Any) -> list[str]:
    channels = [c.room_id for c in await store.channels_of(db, store.MerchantSlug(slug))]
    if channel_ids in (None, [], ""):
        return []
    if not isinstance(channel_ids, list) or not all(isinstance(c, str) for c in channel_ids):
        raise InvalidInput("channels", "must be a list of your channels' room IDs or aliases")
    chosen: list[str] = []
    by_alias = {c.alias: c.room_id for c in await store.channels_of(db, store.MerchantSlug(slug))}
    for item in channel_ids:
        room_id = by_alias.get(item, item)
        if room_id not in channels:
            raise InvalidInput("channels", f"{item} is not a channel of your shop")
        chosen.append(room_id)
    return chosen


async def create_campaign(db: Database, matrix: BroadcastMatrix, principal: Principal,
                          slug: str, body: Any) -> rows.Campaign:
    merchant = await require(db, principal, slug, Action.RUN_CAMPAIGNS)
    if not isinstance(body, dict):
        raise InvalidInput("body", "send a JSON object with kind and fields")
    kind = body.get("kind", "")
    fields = campaigns.validate_fields(kind, body.get("fields"))
    # Every field a follower reads: title, text, link, and a sale's discount and end.
    links.check_links(list(fields.values()), links.policy_for(merchant, matrix.mercato_hosts))
    silent = body.get("silent", False)
    if not isinstance(silent, bool):
        raise InvalidInput("silent", "must be true or false")
    image_mxc = body.get("image_mxc")
    image_mxc = "" if image_mxc is None else image_mxc
    if image_mxc != "" and not (isinstance(image_mxc, str) and image_mxc.startswith("mxc://")):
        raise InvalidInput("image_mxc", "must be an mxc:// URI; upload the image first")
    if silent and image_mxc:
        raise InvalidInput("silent", "silent posts are text only: m.notice cannot carry an "
                                     "image")
    image_info = body.get("image_info")
    image_info = {} if image_info is None else image_info
    if not isinstance(image_info, dict):
        raise InvalidInput("image_info", f"must be an object, not {json_kind(image_info)}")
    channel_ids = await _target_rooms(db, slug, body.get("channels"))
    coupon_id = None
    async with transaction(db) as conn:
        if kind == "coupon":
            coupon = body.get("coupon")
            if not isinstance(coupon, dict):
                raise InvalidInput("coupon", "a coupon drop needs {\"stock\": …, "
                                             "\"expires_at\": …}")
            stock = coupon.get("stock")
            if not isinstance(stock, int) or isinstance(stock, bool) or not (
                    0 < stock <= MAX_COUPON_STOCK):
                raise InvalidInput("coupon.stock", f"must be a whole number from 1 to "
                                                   f"{MAX_COUPON_STOCK}")
            expires_at = campaigns.parse_time("coupon.expires_at", coupon.get("expires_at"))
            if expires_at <= int(time.time() * 1000):
                raise InvalidInput("coupon.expires_at", "is in the past")
            coupon_id = await rows.insert_coupon(conn, slug, fields["title"], stock, expires_at,
                                                 principal.actor)
            percent_off, amount_off = campaigns.coupon_discount(coupon)
            if percent_off or amount_off:
                await rows.set_coupon_discount(conn, coupon_id, percent_off, amount_off)
        campaign_id = await rows.insert_campaign(
            conn, slug=slug, kind=kind, fields=fields, image_mxc=image_mxc,
            image_info=image_info, silent=silent, channel_ids=channel_ids,
            coupon_id=coupon_id, created_by=principal.actor)
        await store.audit(conn, slug, principal.actor, "campaign_created",
                          campaign=campaign_id, kind=kind)
    campaign = await rows.get_campaign(db, campaign_id)
    assert campaign is not None
    return campaign


async def get_campaign(db: Database, principal: Principal, slug: str, campaign_id: int,
                       action: Action = Action.RUN_CAMPAIGNS) -> tuple[store.Merchant,
                                                                        rows.Campaign]:
    merchant = await require(db, principal, slug, action)
    campaign = await rows.get_campaign(db, campaign_id)
    if campaign is None or campaign.merchant_slug != slug:
        raise NotFound(f"There is no campaign {campaign_id} in '{slug}'.")
    return merchant, campaign


async def preview(db: Database, matrix: BroadcastMatrix, principal: Principal, slug: str,
                  campaign_id: int) -> rows.Campaign:
    merchant, campaign = await get_campaign(db, principal, slug, campaign_id)
    if campaign.state not in ("draft", "scheduled"):
        raise Conflict(f"Campaign {campaign_id} is {campaign.state}; only drafts and "
                       "scheduled campaigns can be previewed.", errcode="MERCATO_WRONG_STATE")
    content = campaigns.preview_content(await render_campaign(db, merchant, campaign),
                                        campaign_id)
    event_id = await matrix.send_preview(merchant, content, campaign_id)
    await rows.set_campaign(db, campaign_id, preview_event_id=event_id)
    return await _reload(db, campaign_id)


async def schedule(db: Database, matrix: BroadcastMatrix, principal: Principal, slug: str,
                   campaign_id: int, at: Any = None) -> rows.Campaign:
    """Schedule for `at`, or send now when `at` is empty. Quota is checked here."""
    merchant, campaign = await get_campaign(db, principal, slug, campaign_id)
    if merchant.status != "approved":
        raise Forbidden(f"The shop is {merchant.status} and cannot post.",
                        errcode="MERCATO_SHOP_NOT_ACTIVE")
    if campaign.state not in ("draft", "scheduled"):
        raise Conflict(f"Campaign {campaign_id} is {campaign.state}; it cannot be scheduled.",
                       errcode="MERCATO_WRONG_STATE")
    now = int(time.time() * 1000)
    when = now if at in (None, "", "now") else campaigns.parse_time("at", at)
    when = max(when, now)
    # Links are checked again: the shop's verification may have changed since the draft.
    links.check_links([str(v) for v in campaign.fields.values()],
                      links.policy_for(merchant, matrix.mercato_hosts))
    async with transaction(db) as conn:
        # Posts within a day before or after this one: no 24-hour span may hold more
        # than the quota, and rescheduling a campaign does not count it twice.
        used, oldest = await rows.sends_around(conn, slug, when, DAY_MS,
                                               exclude=campaign_id)
        campaigns.check_quota(merchant.daily_post_quota, used, oldest, now)
        await rows.set_campaign(conn, campaign_id, state="scheduled", scheduled_at=when)
        await store.audit(conn, slug, principal.actor, "campaign_scheduled",
                          campaign=campaign_id, at=when)
    matrix.wake_outbox()
    return await _reload(db, campaign_id)


async def cancel(db: Database, principal: Principal, slug: str,
                 campaign_id: int) -> rows.Campaign:
    _, campaign = await get_campaign(db, principal, slug, campaign_id)
    async with transaction(db) as conn:
        current = await rows.get_campaign(conn, campaign_id)
        if current is None or current.state not in ("draft", "scheduled"):
            raise Conflict(f"Campaign {campaign_id} is {campaign.state}; only drafts and "
                           "scheduled campaigns can be cancelled.", errcode="MERCATO_WRONG_STATE")
        await rows.set_campaign(conn, campaign_id, state="cancelled")
        await store.audit(conn, slug, principal.actor, "campaign_cancelled",
                          campaign=campaign_id)
    return await _reload(db, campaign_id)


async def retract(db: Database, matrix: BroadcastMatrix, principal: Principal, slug: str,
                  campaign_id: int) -> rows.Campaign:
    merchant, campaign = await get_campaign(db, principal, slug, campaign_id)
    if campaign.state != "sent":
        raise Conflict(f"Campaign {campaign_id} is {campaign.state}; only sent campaigns can "
                       "be retracted.", errcode="MERCATO_WRONG_STATE")
    for post in await rows.outbox_of(db, campaign_id):
        if post["event_id"]:
            await matrix.retract_post(merchant, post["room_id"], post["event_id"],
                                      "Retracted by the shop")
    async with transaction(db) as conn:
        await rows.set_campaign(conn, campaign_id, state="retracted",
                                retracted_at=int(time.time() * 1000))
        await store.audit(conn, slug, principal.actor, "campaign_retracted",
                          campaign=campaign_id)
    return await _reload(db, campaign_id)


async def _reload(db: Database, campaign_id: int) -> rows.Campaign:
    campaign = await rows.get_campaign(db, campaign_id)
    assert campaign is not None
    return campaign
