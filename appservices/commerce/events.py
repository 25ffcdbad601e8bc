"""What commerce does with the Matrix events it is sent, beyond customer service: followers
joining and leaving channels, reactions (price alerts, carts, coupon claims, post stats,
⭐ recommendations in the Circle) and read receipts (post views)."""

from __future__ import annotations

from typing import Any

from mautrix.types import Membership, StateEvent

from appservices.commerce.campaigns import coupons
from appservices.commerce.campaigns import rules as campaigns
from appservices.commerce.campaigns import storage as campaign_rows
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import products
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.circle import events as circle_events
from appservices.commerce.errors import CommerceError
from appservices.commerce.matrix import CommerceMatrix
from appservices.commerce.orders import chat as order_chat
from appservices.commerce.shops import follow_reward
from appservices.commerce.shops import storage as store
from mercato.logging import get_logger
from mercato.matrix.appservice import membership_of
from mercato.types import MerchantSlug

log = get_logger(__name__)


async def track_follower(matrix: CommerceMatrix, event: StateEvent) -> None:
    """A follower joined or left one of a shop's channels."""
    channel = await store.get_channel(matrix.db, event.room_id)
    if channel is None:
        return
    user_id = event.state_key
    if user_id == matrix.bot_mxid or matrix.is_shop_user(user_id):
        return
    membership = membership_of(event)
    if membership == Membership.JOIN:
        await store.add_follower(matrix.db, channel.room_id, user_id, at=event.timestamp)
        log.info("channel.followed", room_id=channel.room_id, user_id=user_id)
        # A first follow ever: where it came from, and the shop's follow reward.
        await follow_reward.on_follow(matrix.db, matrix, channel.merchant_slug, user_id,
                                      at=event.timestamp)
    elif membership in (Membership.LEAVE, Membership.BAN):
        await store.remove_follower(matrix.db, channel.room_id, user_id, at=event.timestamp)
        log.info("channel.unfollowed", room_id=channel.room_id, user_id=user_id)


async def track_reaction(matrix: CommerceMatrix, raw: dict[str, Any]) -> None:
    """🔔 on a product card subscribes to its price alert, 🛒 puts it in the buyer's cart; a
    reaction to a post is counted, and 🎟️ on a coupon drop claims a code."""
    relation = raw.get("content", {}).get("m.relates_to", {})
    post_event_id, key = relation.get("event_id"), relation.get("key")
    sender = str(raw.get("sender", ""))
    if relation.get("rel_type") != "m.annotation" or not isinstance(post_event_id, str) \
            or not isinstance(key, str) or matrix.is_own_user(sender):
        return
    # ⭐ recommends the card, post or friend's find it is on, in the sender's Circle.
    if await circle_events.on_reaction(matrix, raw, post_event_id, key, sender,
                                       int(raw.get("origin_server_ts") or store.now_ms())):
        return
    card = await product_rows.card_of_event(matrix.db, post_event_id)
    if card is not None and order_chat.is_cart_reaction(key):
        await order_chat.add_by_reaction(matrix.db, matrix, card[0], card[1], sender,
                                         str(raw["event_id"]))
        return
    if card is not None and key.replace("\ufe0f", "") == products.ALERT_REACTION:
        await catalog.subscribe_alert(matrix.db, card[0], card[1], sender)
        log.info("alert.subscribed", shop=card[0], sku=card[1], user_id=sender)
        return
    post = await campaign_rows.post_of_event(matrix.db, post_event_id)
    if post is None:
        return
    await campaign_rows.record_reaction(matrix.db, raw["event_id"], post_event_id, sender,
                                        key[:64], raw.get("origin_server_ts", 0))
    campaign = await campaign_rows.get_campaign(matrix.db, post[0])
    if campaign and campaign.coupon_id and key.replace("\ufe0f", "") == \
            campaigns.CLAIM_REACTION.replace("\ufe0f", ""):
        try:
            await coupons.claim_coupon(matrix.db, matrix, campaign.coupon_id, sender)
        except CommerceError as e:
            # Sold out, expired, shop suspended: tell the follower why, privately.
            merchant = await store.get_merchant(matrix.db, MerchantSlug(campaign.merchant_slug))
            if merchant is not None:
                await matrix.send_direct(merchant, sender, f"Sorry: {e.message}",
                                       txn_id=f"mercato.coupon.refused.{raw['event_id']}")


async def track_receipts(matrix: CommerceMatrix, raw: dict[str, Any]) -> None:
    """Read receipts on campaign posts: the views in a campaign's stats."""
    if raw.get("type") != "m.receipt" or not isinstance(raw.get("content"), dict):
        return
    for event_id, receipts in raw["content"].items():
        if not isinstance(receipts, dict) or not await campaign_rows.post_of_event(
                matrix.db, event_id):
            continue
        for receipt_type in ("m.read", "m.read.private"):
            for user_id, data in (receipts.get(receipt_type) or {}).items():
                if matrix.is_own_user(user_id):
                    continue
                ts = data.get("ts", 0) if isinstance(data, dict) else 0
                await campaign_rows.record_view(matrix.db, event_id, user_id, ts)
