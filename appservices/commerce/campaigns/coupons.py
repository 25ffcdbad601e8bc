"""Coupon drops: a follower claims a code with a reaction (one each, while stock lasts and
before expiry), gets it in a DM, and the shop redeems it once at the till."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from appservices.commerce.campaigns import storage as rows
from appservices.commerce.campaigns.operations import BroadcastMatrix
from appservices.commerce.errors import Conflict, Forbidden, InvalidInput, NotFound
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, require
from appservices.commerce.shops.roles import Action
from mercato.db import Database, transaction
from mercato.logging import get_logger

log = get_logger(__name__)


async def claim_coupon(db: Database, matrix: BroadcastMatrix, coupon_id: int,
                       user_id: str) -> dict[str, Any]:
    """A follower claims a coupon: one code per follower, while stock lasts and not expired.

    Safe to repeat: a second claim returns the same code (and re-sends the DM only if the
    first one was not recorded).
    """
    coupon = await rows.get_coupon(db, coupon_id)
    if coupon is None:
        raise NotFound(f"There is no coupon {coupon_id}.")
    merchant = await store.get_merchant(db, store.MerchantSlug(coupon["merchant_slug"]))
    assert merchant is not None
    if merchant.status != "approved":
        raise Forbidden(f"{merchant.name} is {merchant.status} and cannot hand out coupons.",
                        errcode="MERCATO_SHOP_NOT_ACTIVE")
    state = await rows.campaign_state_of_coupon(db, coupon_id)
    if state not in ("sending", "sent"):
        # Drafts, cancelled and retracted drops hand out nothing (IDs are guessable).
        raise NotFound(f"There is no coupon {coupon_id} to claim.")
    now = int(time.time() * 1000)
    async with transaction(db) as conn:
        await rows.hold_coupon(conn, coupon_id)  # claims of this coupon count in turn
        existing = await rows.code_of(conn, coupon_id, user_id)
        if existing is None:
            if coupon["expires_at"] <= now:
                raise Conflict(f"The coupon '{coupon['title']}' has expired.",
                               errcode="MERCATO_COUPON_EXPIRED", status=410)
            if await rows.claimed_count(conn, coupon_id) >= coupon["stock"]:
                raise Conflict(f"All {coupon['stock']} codes of '{coupon['title']}' are taken.",
                               errcode="MERCATO_COUPON_SOLD_OUT", status=410)
            code = rows.new_code()
            await rows.insert_code(conn, code, coupon_id, merchant.slug, user_id, now)
            existing = {"code": code, "dm_room_id": None, "dm_event_id": None}
    code = existing["code"]
    if not existing["dm_event_id"]:
        expires = datetime.fromtimestamp(coupon["expires_at"] / 1000, UTC)
        text = (f"🎟️ Your code for \"{coupon['title']}\": {code}\n"
                f"Valid until {expires:%Y-%m-%d %H:%M} UTC, once. Show it at checkout or give "
                f"it to {merchant.name} when you order.")
        room_id, event_id = await matrix.send_coupon_code(merchant, user_id, text, code)
        # The outbox sends the DM (once the buyer has joined it) and records its event ID.
        await rows.set_code_dm(db, code, room_id, event_id or None)
    log.info("coupon.claimed", coupon=coupon_id, shop=merchant.slug, user_id=user_id)
    return {"coupon": coupon_id, "code": code, "title": coupon["title"]}


async def redeem(db: Database, principal: Principal, slug: str, code: Any) -> dict[str, Any]:
    """Mark a buyer's code used at the till, once: the API, the shop bot and the console's
    till form call this. Two staff typing the same code at the same moment: one is told
    it is redeemed, the other when it was (the conditional UPDATE decides, on SQLite and
    PostgreSQL alike); the code and its audit entry are one transaction."""
    await require(db, principal, slug, Action.REDEEM_COUPONS)
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput("code", "send the code the buyer shows you")
    code = code.strip().upper()
    found = await rows.get_code(db, code)
    if found is None or found["merchant_slug"] != slug:
        raise NotFound(f"{code} is not a code of this shop.", errcode="MERCATO_CODE_UNKNOWN")
    now = int(time.time() * 1000)
    if found["expires_at"] <= now:
        raise Conflict(f"{code} expired; it cannot be redeemed.",
                       errcode="MERCATO_CODE_EXPIRED", status=410)
    async with transaction(db) as conn:
        redeemed = await rows.redeem_code(conn, code, principal.actor, now)
        if redeemed:
            await store.audit(conn, slug, principal.actor, "coupon_redeemed", code=code,
                              coupon=found["coupon_id"])
    if not redeemed:
        used = await rows.get_code(db, code) or found
        when = datetime.fromtimestamp((used["redeemed_at"] or now) / 1000, UTC)
        raise Conflict(f"{code} was already redeemed on {when:%Y-%m-%d %H:%M} UTC.",
                       errcode="MERCATO_CODE_USED")
    log.info("coupon.redeemed", shop=slug, coupon=found["coupon_id"])
    return {"code": code, "coupon": found["coupon_id"], "title": found["title"],
            "user_id": found["user_id"], "redeemed_at": now}


def coupon_view(row: dict[str, Any], now: int) -> dict[str, Any]:
    """One coupon as the shop sees it: stock, claims, redemptions, expiry, and its source."""
    source = ("follow_reward" if row["follow_reward_active"] is not None else
              "campaign" if row["campaign_id"] is not None else "other")
    return {"id": row["id"], "title": row["title"], "stock": row["stock"],
            "claims": int(row["claims"]), "redemptions": int(row["redemptions"]),
            "left": max(row["stock"] - int(row["claims"]), 0),
            "expires_at": row["expires_at"], "expired": row["expires_at"] <= now,
            "percent_off": row["percent_off"], "amount_off": row["amount_off"],
            "source": source, "campaign": row["campaign_id"],
            "campaign_state": row["campaign_state"], "created_at": row["created_at"]}


async def shop_coupons(db: Database, principal: Principal, slug: str) -> list[dict[str, Any]]:
    """The shop's coupons, newest first (every staff role: the till needs them)."""
    await require(db, principal, slug, Action.READ_SHOP)
    now = int(time.time() * 1000)
    return [coupon_view(row, now) for row in await rows.coupons_of_shop(db, slug)]
