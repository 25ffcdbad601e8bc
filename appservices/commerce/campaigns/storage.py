"""Campaign, outbox, coupon and stats rows."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appservices.commerce.shops.storage import now_ms


@dataclass(frozen=True)
class Campaign:
    id: int
    merchant_slug: str
    kind: str
    fields: dict[str, str]
    image_mxc: str
    image_info: dict[str, Any]
    silent: bool
    channel_ids: list[str]
    coupon_id: int | None
    state: str
    scheduled_at: int | None
    preview_event_id: str | None
    created_by: str
    created_at: int
    sent_at: int | None
    retracted_at: int | None


_CAMPAIGN_COLUMNS = ("id, merchant_slug, kind, fields, image_mxc, image_info, silent, "
                     "channel_ids, coupon_id, state, scheduled_at, preview_event_id, created_by,"
                     " created_at, sent_at, retracted_at")


def _campaign(row: Any) -> Campaign:
    data = {k: row[k] for k in row.keys()}
    data["fields"] = json.loads(data["fields"])
    data["image_info"] = json.loads(data["image_info"])
    data["channel_ids"] = json.loads(data["channel_ids"])
    data["silent"] = bool(data["silent"])
    return Campaign(**data)


async def insert_campaign(db: Any, *, slug: str, kind: str, fields: dict[str, str],
                          image_mxc: str, image_info: dict[str, Any], silent: bool,
                          channel_ids: list[str], coupon_id: int | None,
                          created_by: str) -> int:
    return await db.fetchval(
        "INSERT INTO campaign (merchant_slug, kind, fields, image_mxc, image_info, silent,"
        " channel_ids, coupon_id, state, created_by, created_at)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'draft',$9,$10) RETURNING id",
        slug, kind, json.dumps(fields), image_mxc, json.dumps(image_info), silent,
        json.dumps(channel_ids), coupon_id, created_by, now_ms())


async def get_campaign(db: Any, campaign_id: int) -> Campaign | None:
    row = await db.fetchrow(f"SELECT {_CAMPAIGN_COLUMNS} FROM campaign WHERE id=$1",
                            campaign_id)
    return _campaign(row) if row else None


async def campaigns_of(db: Any, slug: str, limit: int = 100) -> list[Campaign]:
    rows = await db.fetch(f"SELECT {_CAMPAIGN_COLUMNS} FROM campaign WHERE merchant_slug=$1"
                          " ORDER BY id DESC LIMIT $2", slug, limit)
    return [_campaign(r) for r in rows]


async def set_campaign(db: Any, campaign_id: int, **changes: Any) -> None:
    allowed = {"state", "scheduled_at", "preview_event_id", "sent_at", "retracted_at",
               "fields", "image_mxc", "image_info", "silent", "channel_ids"}
    if set(changes) - allowed:
        raise ValueError(f"not updatable: {sorted(set(changes) - allowed)}")
    for key in ("fields", "image_info", "channel_ids"):
        if key in changes:
            changes[key] = json.dumps(changes[key])
    names = list(changes)
    assignments = ", ".join(f"{name}=${i + 2}" for i, name in enumerate(names))
    await db.execute(f"UPDATE campaign SET {assignments} WHERE id=$1", campaign_id,
                     *(changes[n] for n in names))


async def due_campaigns(db: Any, now: int) -> list[int]:
    rows = await db.fetch("SELECT id FROM campaign WHERE state='scheduled' AND scheduled_at<=$1"
                          " ORDER BY scheduled_at, id", now)
    return [row["id"] for row in rows]


async def sends_around(db: Any, slug: str, when: int, window: int,
                       exclude: int) -> tuple[int, int | None]:
    """Other campaigns of the shop sent or due within `window` of `when`: (count, oldest)."""
    row = await db.fetchrow(
        "SELECT COUNT(*) AS n, MIN(COALESCE(sent_at, scheduled_at)) AS oldest FROM campaign"
        " WHERE merchant_slug=$1 AND state IN ('scheduled', 'sending', 'sent', 'retracted',"
        " 'failed') AND COALESCE(sent_at, scheduled_at) > $2"
        " AND COALESCE(sent_at, scheduled_at) < $3 AND id <> $4",
        slug, when - window, when + window, exclude)
    return row["n"], row["oldest"]


# -- outbox --------------------------------------------------------------------------------

async def enqueue(db: Any, campaign_id: int, room_ids: list[str]) -> list[tuple[int, str]]:
    """A row per room; (row id, room) of the campaign's pending rows."""
    for room_id in room_ids:
        await db.execute("INSERT INTO outbox (campaign_id, room_id) VALUES ($1, $2)"
                         " ON CONFLICT (campaign_id, room_id) DO NOTHING", campaign_id, room_id)
    return [(r["id"], r["room_id"]) for r in await db.fetch(
        "SELECT id, room_id FROM outbox WHERE campaign_id=$1 AND state='pending' ORDER BY id",
        campaign_id)]


async def finish_sending(db: Any, campaign_id: int, state: str, sent_at: int) -> bool:
    """The campaign leaves `sending` for `state`; False if it had left it already."""
    row = await db.fetchrow("UPDATE campaign SET state=$1, sent_at=$2 WHERE id=$3"
                            " AND state='sending' RETURNING id", state, sent_at, campaign_id)
    return row is not None


async def campaign_of_row(db: Any, row_id: int) -> int | None:
    return await db.fetchval("SELECT campaign_id FROM outbox WHERE id=$1", row_id)


async def mark_attempt(db: Any, row_id: int, attempts: int) -> None:
    """Written before the send: a crash after it tells the next try to look first."""
    await db.execute("UPDATE outbox SET attempts=$1 WHERE id=$2", attempts, row_id)


async def mark_sent(db: Any, row_id: int, event_id: str, reach: int) -> None:
    await db.execute("UPDATE outbox SET state='sent', event_id=$1, reach=$2, sent_at=$3,"
                     " last_error=NULL WHERE id=$4", event_id, reach, now_ms(), row_id)


async def mark_retry(db: Any, row_id: int, error: str, next_attempt_at: int,
                     give_up: bool) -> None:
    await db.execute("UPDATE outbox SET last_error=$1, next_attempt_at=$2, state=$3 WHERE id=$4",
                     error[:2000], next_attempt_at, "failed" if give_up else "pending", row_id)


async def outbox_of(db: Any, campaign_id: int) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT room_id, state, event_id, reach, attempts, last_error"
                          " FROM outbox WHERE campaign_id=$1 ORDER BY id", campaign_id)
    return [{k: r[k] for k in r.keys()} for r in rows]


async def post_of_event(db: Any, event_id: str) -> tuple[int, str] | None:
    row = await db.fetchrow("SELECT campaign_id, room_id FROM outbox WHERE event_id=$1",
                            event_id)
    return (row["campaign_id"], row["room_id"]) if row else None


async def sending_campaigns(db: Any) -> list[int]:
    return [row["id"] for row in await db.fetch("SELECT id FROM campaign WHERE state='sending'")]


async def posts_in_state(db: Any, campaign_id: int, state: str) -> int:
    """How many of a campaign's (room) posts are pending, sent or failed."""
    return await db.fetchval("SELECT COUNT(*) FROM outbox WHERE campaign_id=$1 AND state=$2",
                             campaign_id, state)


# -- what followers do with posts ----------------------------------------------------------

async def record_reaction(db: Any, reaction_event_id: str, post_event_id: str, user_id: str,
                          key: str, at: int) -> None:
    await db.execute(
        "INSERT INTO post_reaction (reaction_event_id, post_event_id, user_id, reaction_key,"
        " at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (reaction_event_id) DO NOTHING",
        reaction_event_id, post_event_id, user_id, key, at)


async def record_view(db: Any, post_event_id: str, user_id: str, at: int) -> None:
    await db.execute(
        "INSERT INTO post_view (post_event_id, user_id, at) VALUES ($1, $2, $3)"
        " ON CONFLICT (post_event_id, user_id) DO NOTHING", post_event_id, user_id, at)


async def view_count(db: Any, post_event_id: str) -> int:
    return await db.fetchval("SELECT COUNT(*) FROM post_view WHERE post_event_id=$1",
                             post_event_id)


async def reaction_count(db: Any, post_event_id: str) -> int:
    return await db.fetchval("SELECT COUNT(*) FROM post_reaction WHERE post_event_id=$1",
                             post_event_id)


async def follow_log(db: Any, room_ids: Sequence[str]) -> list[Any]:
    """Every follow and unfollow in these rooms, oldest first (user_id, followed, at)."""
    placeholders = ", ".join(f"${i + 1}" for i in range(len(room_ids)))
    return await db.fetch(
        f"SELECT user_id, followed, at FROM follow_log WHERE room_id IN ({placeholders})"
        " ORDER BY id", *room_ids)


# -- coupons -------------------------------------------------------------------------------

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a till


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


async def insert_coupon(db: Any, slug: str, title: str, stock: int, expires_at: int,
                        created_by: str) -> int:
    return await db.fetchval(
        "INSERT INTO coupon (merchant_slug, title, stock, expires_at, created_by, created_at)"
        " VALUES ($1,$2,$3,$4,$5,$6) RETURNING id", slug, title, stock, expires_at, created_by,
        now_ms())


async def set_coupon_discount(db: Any, coupon_id: int, percent_off: int | None,
                              amount_off: str | None) -> None:
    """What the coupon's codes take off at checkout (orders)."""
    await db.execute("UPDATE coupon SET percent_off=$1, amount_off=$2 WHERE id=$3",
                     percent_off, amount_off, coupon_id)


async def get_coupon(db: Any, coupon_id: int) -> dict[str, Any] | None:
    row = await db.fetchrow("SELECT id, merchant_slug, title, stock, expires_at, created_at,"
                            " percent_off, amount_off FROM coupon WHERE id=$1", coupon_id)
    return {k: row[k] for k in row.keys()} if row else None


async def code_of(db: Any, coupon_id: int, user_id: str) -> dict[str, Any] | None:
    row = await db.fetchrow("SELECT code, dm_room_id, dm_event_id, redeemed_at FROM coupon_code"
                            " WHERE coupon_id=$1 AND user_id=$2", coupon_id, user_id)
    return {k: row[k] for k in row.keys()} if row else None


async def campaign_state_of_coupon(db: Any, coupon_id: int) -> str | None:
    return await db.fetchval("SELECT state FROM campaign WHERE coupon_id=$1", coupon_id)


async def insert_code(db: Any, code: str, coupon_id: int, slug: str, user_id: str,
                      at: int) -> None:
    await db.execute(
        "INSERT INTO coupon_code (code, coupon_id, merchant_slug, user_id, claimed_at)"
        " VALUES ($1, $2, $3, $4, $5)", code, coupon_id, slug, user_id, at)


async def redeem_code(db: Any, code: str, by: str, at: int) -> bool:
    """Mark a code redeemed; False when it already was."""
    return await db.fetchval(
        "UPDATE coupon_code SET redeemed_at=$1, redeemed_by=$2 WHERE code=$3"
        " AND redeemed_at IS NULL RETURNING code", at, by, code) is not None


async def redeemed_count(db: Any, coupon_id: int) -> int:
    return await db.fetchval(
        "SELECT COUNT(*) FROM coupon_code WHERE coupon_id=$1 AND redeemed_at IS NOT NULL",
        coupon_id)


async def hold_coupon(conn: Any, coupon_id: int) -> None:
    """Lock the coupon's row until the transaction ends, so that claims of one coupon
    count its codes one after another: an UPDATE that changes nothing, which PostgreSQL
    makes wait for another transaction holding the row (under READ COMMITTED the count
    that follows then sees that one's code) and which SQLite, whose transaction holds
    the write lock already, just runs. Without it two claims of the last code on
    PostgreSQL both counted one left and both got a code."""
    await conn.execute("UPDATE coupon SET stock = stock WHERE id=$1", coupon_id)


async def claimed_count(db: Any, coupon_id: int) -> int:
    return await db.fetchval("SELECT COUNT(*) FROM coupon_code WHERE coupon_id=$1", coupon_id)


async def set_code_dm(db: Any, code: str, room_id: str, event_id: str | None) -> None:
    """Where the code's DM is; its event ID once sent (a later call without one keeps it)."""
    await db.execute("UPDATE coupon_code SET dm_room_id=$1,"
                     " dm_event_id=COALESCE($2, dm_event_id) WHERE code=$3",
                     room_id, event_id, code)


async def get_code(db: Any, code: str) -> dict[str, Any] | None:
    row = await db.fetchrow(
        "SELECT c.code, c.coupon_id, c.merchant_slug, c.user_id, c.claimed_at, c.redeemed_at,"
        " c.redeemed_by, k.expires_at, k.title FROM coupon_code c JOIN coupon k"
        " ON k.id=c.coupon_id WHERE c.code=$1", code)
    return {k: row[k] for k in row.keys()} if row else None


async def codes_of_user(db: Any, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """A buyer's coupon codes, newest claim first, with the coupon's title and expiry."""
    rows = await db.fetch(
        "SELECT c.code, c.coupon_id, c.merchant_slug, k.title, k.expires_at, c.claimed_at,"
        " c.redeemed_at FROM coupon_code c JOIN coupon k ON k.id=c.coupon_id"
        " WHERE c.user_id=$1 ORDER BY c.claimed_at DESC, c.coupon_id DESC LIMIT $2",
        user_id, limit)
    return [{k: r[k] for k in r.keys()} for r in rows]


async def coupons_of_shop(db: Any, slug: str, limit: int = 200) -> list[dict[str, Any]]:
    """The shop's coupons, newest first, each with its codes claimed and redeemed and where
    it came from (the campaign that drops it, or the follow reward)."""
    rows = await db.fetch(
        "SELECT k.id, k.title, k.stock, k.expires_at, k.created_at, k.percent_off,"
        " k.amount_off, ca.id AS campaign_id, ca.state AS campaign_state,"
        " fr.active AS follow_reward_active,"
        " (SELECT COUNT(*) FROM coupon_code c WHERE c.coupon_id=k.id) AS claims,"
        " (SELECT COUNT(*) FROM coupon_code c WHERE c.coupon_id=k.id"
        "  AND c.redeemed_at IS NOT NULL) AS redemptions"
        " FROM coupon k LEFT JOIN campaign ca ON ca.coupon_id=k.id"
        " LEFT JOIN follow_reward fr ON fr.coupon_id=k.id AND fr.merchant_slug=k.merchant_slug"
        " WHERE k.merchant_slug=$1 ORDER BY k.created_at DESC, k.id DESC LIMIT $2",
        slug, limit)
    return [{k: r[k] for k in r.keys()} for r in rows]
