"""A shop's numbers: followers day by day, each campaign's reach, views, reactions,
claims, redemptions and the orders it brought, and the shop's orders and revenue."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from appservices.commerce.campaigns import storage as rows
from appservices.commerce.orders.views import order_numbers
from appservices.commerce.quotas import DAY_MS
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, require
from appservices.commerce.shops.roles import Action
from mercato.db import Database


async def stats(db: Database, principal: Principal, slug: str, days: int = 30) -> dict[str, Any]:
    await require(db, principal, slug, Action.READ_STATS)
    channels = [c.room_id for c in await store.channels_of(db, store.MerchantSlug(slug))]
    followers = await store.follower_count(db, store.MerchantSlug(slug))
    history = []
    if channels:
        log_rows = await rows.follow_log(db, channels)
        day_ms = DAY_MS
        today = int(time.time() * 1000) // day_ms
        members: dict[str, int] = {}
        index = 0
        for day in range(today - days + 1, today + 1):
            while index < len(log_rows) and log_rows[index]["at"] // day_ms <= day:
                row = log_rows[index]
                members[row["user_id"]] = members.get(row["user_id"], 0) + (
                    1 if row["followed"] else -1)
                index += 1
            count = sum(1 for v in members.values() if v > 0)
            history.append({"day": datetime.fromtimestamp(day * day_ms / 1000, UTC)
                            .date().isoformat(), "followers": count})
    orders = await order_numbers(db, slug)
    per_campaign = []
    per_channel: dict[str, dict[str, Any]] = {
        room: {"room_id": room, "posts": 0, "reach": 0, "views": 0, "reactions": 0}
        for room in channels}
    for campaign in await rows.campaigns_of(db, slug):
        posts = await rows.outbox_of(db, campaign.id)
        views = reactions = 0
        for post in posts:
            seen = await rows.view_count(db, post["event_id"]) if post["event_id"] else 0
            reacted = await rows.reaction_count(db, post["event_id"]) if post["event_id"] else 0
            views, reactions = views + seen, reactions + reacted
            channel = per_channel.setdefault(post["room_id"], {
                "room_id": post["room_id"], "posts": 0, "reach": 0, "views": 0, "reactions": 0})
            channel["posts"] += 1 if post["event_id"] else 0
            channel["reach"] += post["reach"] or 0
            channel["views"] += seen
            channel["reactions"] += reacted
        claims = redemptions = 0
        if campaign.coupon_id:
            claims = await rows.claimed_count(db, campaign.coupon_id)
            redemptions = await rows.redeemed_count(db, campaign.coupon_id)
        per_campaign.append({
            "id": campaign.id, "kind": campaign.kind, "title": campaign.fields.get("title"),
            "state": campaign.state, "sent_at": campaign.sent_at,
            "reach": sum(p["reach"] or 0 for p in posts), "views": views,
            "reactions": reactions, "claims": claims, "redemptions": redemptions,
            # Orders of products the campaign linked to, placed while it was the latest.
            "orders": orders["by_campaign"].get(campaign.id, 0),
        })
    orders.pop("by_campaign")
    return {"followers": followers, "followers_by_day": history, "campaigns": per_campaign,
            "channels": list(per_channel.values()), "orders": orders,
            "note": "views come from read receipts and are approximate"}
