"""The follow reward: a coupon a shop sends by DM once to each new follower.

A new follower is a Matrix account following the shop for the first time ever: leaving
and following again earns nothing (`new_follower` is keyed by shop and account). The
reward is a coupon like a campaign's coupon drop (its codes work at checkout), with a
stock: each code is taken in one statement, and once none is left (or it expired) later
followers get none and the stats say so. The code travels through the outbox as the
shop's DM, recorded when the follow is (events.py), so a replayed join sends it once.

Each first follow is also written down with where it came from: 'poster' when the
follower opened the poster's link signed in (see web/follow_pages.py and
docs/follow-from-paper.md for what can and cannot be measured), else 'elsewhere'.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from appservices.commerce import links
from appservices.commerce.campaigns import rules as campaign_rules
from appservices.commerce.campaigns import storage as coupon_rows
from appservices.commerce.campaigns.operations import MAX_COUPON_STOCK, BroadcastMatrix
from appservices.commerce.errors import InvalidInput, NotFound
from appservices.commerce.shops import follow_storage as rows
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, require
from appservices.commerce.shops.roles import Action
from mercato.db import Database, transaction
from mercato.logging import get_logger
from mercato.types import MerchantSlug
from mercato.values import InvalidValue, plain_text

log = get_logger(__name__)

TITLE_LIMIT = 80
VISIT_COUNTS_MS = 7 * 24 * 3600 * 1000  # a poster visit counts for a follow within a week


def _now() -> int:
    return int(time.time() * 1000)


def discount_text(percent_off: int | None, amount_off: str | None) -> str:
    if percent_off:
        return f"{percent_off}% off"
    if amount_off:
        return f"{amount_off} off"
    return ""


def offer_text(reward: rows.Reward | None, now: int) -> str:
    """What the poster promises a new follower (the reward's title) while the reward is on,
    in stock and not expired; empty otherwise."""
    if reward is None or not reward.active or reward.given >= reward.stock \
            or reward.expires_at <= now:
        return ""
    return reward.title


def reward_view(reward: rows.Reward | None, now: int) -> dict[str, Any] | None:
    """The reward as the API and the stats show it, out of stock and expiry said plainly."""
    if reward is None:
        return None
    left = max(reward.stock - reward.given, 0)
    return {"title": reward.title, "percent_off": reward.percent_off,
            "amount_off": reward.amount_off, "stock": reward.stock, "given": reward.given,
            "left": left, "out_of_stock": left == 0, "expired": reward.expires_at <= now,
            "expires_at": reward.expires_at, "active": reward.active,
            "missed": reward.missed, "coupon_id": reward.coupon_id}


# -- the shop sets it --------------------------------------------------------------------------

async def set_reward(db: Database, mercato_hosts: tuple[str, ...], principal: Principal,
                     slug: str, body: Any) -> dict[str, Any]:
    merchant = await require(db, principal, slug, Action.RUN_CAMPAIGNS)
    if not isinstance(body, dict):
        raise InvalidInput("body", "send {\"title\": …, \"percent_off\" or \"amount_off\": …, "
                                   "\"stock\": …, \"expires_at\": …}")
    title = plain_text("title", body.get("title"), TITLE_LIMIT, required=True)
    links.check_links([title], links.policy_for(merchant, mercato_hosts))
    stock = body.get("stock")
    if not isinstance(stock, int) or isinstance(stock, bool) or not (
            0 < stock <= MAX_COUPON_STOCK):
        raise InvalidInput("stock", f"must be a whole number from 1 to {MAX_COUPON_STOCK}")
    expires_at = campaign_rules.parse_time("expires_at", body.get("expires_at"))
    if expires_at <= _now():
        raise InvalidInput("expires_at", "is in the past")
    try:
        percent_off, amount_off = campaign_rules.coupon_discount(body)
    except InvalidValue as e:  # its fields are named as a campaign's coupon names them
        raise InvalidInput(e.field.removeprefix("coupon."), e.reason) from None
    if not percent_off and not amount_off:
        raise InvalidInput("percent_off", "give percent_off (1-100) or amount_off (such as "
                                          "\"5.00\"): what the code takes off at checkout")
    async with transaction(db) as conn:
        coupon_id = await coupon_rows.insert_coupon(conn, slug, title, stock, expires_at,
                                                    principal.actor)
        await coupon_rows.set_coupon_discount(conn, coupon_id, percent_off, amount_off)
        await rows.put_reward(conn, slug, coupon_id, principal.actor)
        await store.audit(conn, slug, principal.actor, "follow_reward_set", coupon=coupon_id,
                          stock=stock)
    log.info("follow_reward.set", shop=slug, coupon=coupon_id, stock=stock)
    return reward_view(await rows.reward_of(db, slug), _now()) or {}


async def stop_reward(db: Database, principal: Principal, slug: str) -> None:
    await require(db, principal, slug, Action.RUN_CAMPAIGNS)
    async with transaction(db) as conn:
        if not await rows.stop_reward(conn, slug):
            raise NotFound(f"{slug} has no follow reward on; nothing was changed.",
                           errcode="MERCATO_NO_FOLLOW_REWARD")
        await store.audit(conn, slug, principal.actor, "follow_reward_stopped")


async def get_reward(db: Database, principal: Principal, slug: str) -> dict[str, Any] | None:
    await require(db, principal, slug, Action.READ_STATS)
    return reward_view(await rows.reward_of(db, slug), _now())


async def follow_stats(db: Database, slug: str) -> dict[str, Any]:
    """The stats' part: first follows from the poster and elsewhere, scans, the reward."""
    return {"follows": await rows.follows_by_source(db, slug),
            "poster_scans": await rows.scan_count(db, slug, "poster"),
            "follow_reward": reward_view(await rows.reward_of(db, slug), _now())}


# -- a follow is recorded ----------------------------------------------------------------------

async def on_follow(db: Database, matrix: BroadcastMatrix, slug: MerchantSlug, user_id: str,
                    at: int) -> None:
    """Someone joined one of the shop's channels: if it is their first follow of the shop
    ever, write down where it came from and hand them the reward while it lasts."""
    follower = await rows.new_follower(db, slug, user_id)
    if follower is None:
        follower = await _first_follow(db, slug, user_id, at)
    if follower.code and not await rows.code_dm_room(db, follower.code):
        await _send_code(db, matrix, slug, user_id, follower.code)


async def _first_follow(db: Database, slug: MerchantSlug, user_id: str,
                        at: int) -> rows.NewFollower:
    merchant = await store.get_merchant(db, slug)
    now = _now()
    async with transaction(db) as conn:
        existing = await rows.new_follower(conn, slug, user_id)
        if existing is not None:  # another channel of the shop recorded it meanwhile
            return existing
        source = await rows.take_visit(conn, slug, user_id, at - VISIT_COUNTS_MS) or "elsewhere"
        reward = await rows.reward_of(conn, slug)
        outcome, code = "none", None
        if reward is not None and reward.active and merchant and merchant.status == "approved":
            coupon_id = await rows.take_one(conn, slug, now)
            if coupon_id is not None:
                code = coupon_rows.new_code()
                await coupon_rows.insert_code(conn, code, coupon_id, slug, user_id, now)
                outcome = "sent"
            else:
                outcome = "expired" if reward.expires_at <= now else "out_of_stock"
                await rows.count_missed(conn, slug)
        follower = rows.NewFollower(merchant_slug=slug, user_id=user_id, followed_at=at,
                                    source=source, reward=outcome, code=code)
        await rows.insert_new_follower(conn, follower)
    log.info("follow.first", shop=slug, user_id=user_id, source=source, reward=outcome)
    return follower


async def _send_code(db: Database, matrix: BroadcastMatrix, slug: MerchantSlug, user_id: str,
                     code: str) -> None:
    merchant = await store.get_merchant(db, slug)
    found = await coupon_rows.get_code(db, code)
    if merchant is None or found is None:
        return
    coupon = await coupon_rows.get_coupon(db, found["coupon_id"]) or {}
    off = discount_text(coupon.get("percent_off"), coupon.get("amount_off"))
    expires = datetime.fromtimestamp(found["expires_at"] / 1000, UTC)
    text = (f"🎁 Thank you for following {merchant.name}! Your welcome gift, "
            f"\"{found['title']}\"{f' ({off})' if off else ''}: {code}\n"
            f"Valid once until {expires:%Y-%m-%d %H:%M} UTC: type it at checkout, or give it to "
            f"{merchant.name} when you order.")
    room_id, event_id = await matrix.send_coupon_code(merchant, user_id, text, code)
    # The outbox sends it (once the follower is in the DM) and records its event ID.
    await coupon_rows.set_code_dm(db, code, room_id, event_id or None)
