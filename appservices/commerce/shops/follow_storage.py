"""Follow rewards and where follows come from, in the database: the shop's reward
(`follow_reward`, its coupon in `coupon`), every account's first follow of a shop
(`new_follower`), poster scans (`follow_scan`) and signed-in poster visits (`follow_visit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appservices.commerce.shops.storage import now_ms


@dataclass(frozen=True)
class Reward:
    merchant_slug: str
    coupon_id: int
    given: int
    missed: int
    active: bool
    title: str
    stock: int
    expires_at: int
    percent_off: int | None
    amount_off: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "active", bool(self.active))  # SQLite: 0/1


@dataclass(frozen=True)
class NewFollower:
    merchant_slug: str
    user_id: str
    followed_at: int
    source: str
    reward: str
    code: str | None


async def put_reward(db: Any, slug: str, coupon_id: int, created_by: str) -> None:
    """The shop's follow reward from now on (in place of an earlier one)."""
    await db.execute(
        "INSERT INTO follow_reward (merchant_slug, coupon_id, given, missed, active, created_by,"
        " created_at) VALUES ($1, $2, 0, 0, true, $3, $4) ON CONFLICT (merchant_slug) DO UPDATE"
        " SET coupon_id=excluded.coupon_id, given=0, missed=0, active=true,"
        " created_by=excluded.created_by, created_at=excluded.created_at",
        slug, coupon_id, created_by, now_ms())


async def stop_reward(db: Any, slug: str) -> bool:
    stopped = await db.fetchval("UPDATE follow_reward SET active=false WHERE merchant_slug=$1"
                                " AND active RETURNING merchant_slug", slug)
    return stopped is not None


async def reward_of(db: Any, slug: str) -> Reward | None:
    row = await db.fetchrow(
        "SELECT r.merchant_slug, r.coupon_id, r.given, r.missed, r.active, c.title, c.stock,"
        " c.expires_at, c.percent_off, c.amount_off FROM follow_reward r"
        " JOIN coupon c ON c.id=r.coupon_id WHERE r.merchant_slug=$1", slug)
    return Reward(**row) if row else None


async def take_one(db: Any, slug: str, now: int) -> int | None:
    """One code of the reward, if it is on, in stock and not expired: its coupon ID. One
    statement, so two followers at once cannot take the last one twice."""
    return await db.fetchval(
        "UPDATE follow_reward SET given=given+1 WHERE merchant_slug=$1 AND active"
        " AND given < (SELECT stock FROM coupon WHERE id=follow_reward.coupon_id)"
        " AND (SELECT expires_at FROM coupon WHERE id=follow_reward.coupon_id) > $2"
        " RETURNING coupon_id", slug, now)


async def count_missed(db: Any, slug: str) -> None:
    await db.execute("UPDATE follow_reward SET missed=missed+1 WHERE merchant_slug=$1"
                     " AND active", slug)


async def new_follower(db: Any, slug: str, user_id: str) -> NewFollower | None:
    row = await db.fetchrow(
        "SELECT merchant_slug, user_id, followed_at, source, reward, code FROM new_follower"
        " WHERE merchant_slug=$1 AND user_id=$2", slug, user_id)
    return NewFollower(**row) if row else None


async def insert_new_follower(db: Any, follower: NewFollower) -> None:
    await db.execute(
        "INSERT INTO new_follower (merchant_slug, user_id, followed_at, source, reward, code)"
        " VALUES ($1, $2, $3, $4, $5, $6)", follower.merchant_slug, follower.user_id,
        follower.followed_at, follower.source, follower.reward, follower.code)


async def follows_by_source(db: Any, slug: str) -> dict[str, int]:
    rows = await db.fetch("SELECT source, COUNT(*) AS n FROM new_follower"
                          " WHERE merchant_slug=$1 GROUP BY source", slug)
    found = {row["source"]: int(row["n"]) for row in rows}
    return {"poster": found.get("poster", 0), "elsewhere": found.get("elsewhere", 0)}


async def code_dm_room(db: Any, code: str) -> str | None:
    return await db.fetchval("SELECT dm_room_id FROM coupon_code WHERE code=$1", code)


# -- the poster's link -------------------------------------------------------------------------

async def add_scan(db: Any, slug: str, day: str, source: str) -> None:
    await db.execute(
        "INSERT INTO follow_scan (merchant_slug, day, source, scans) VALUES ($1, $2, $3, 1)"
        " ON CONFLICT (merchant_slug, day, source) DO UPDATE"
        " SET scans=follow_scan.scans+1", slug, day, source)


async def scan_count(db: Any, slug: str, source: str) -> int:
    total = await db.fetchval("SELECT SUM(scans) FROM follow_scan WHERE merchant_slug=$1"
                              " AND source=$2", slug, source)
    return int(total or 0)


async def put_visit(db: Any, slug: str, user_id: str, source: str, at: int) -> None:
    await db.execute(
        "INSERT INTO follow_visit (merchant_slug, user_id, source, at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (merchant_slug, user_id) DO UPDATE SET source=excluded.source,"
        " at=excluded.at", slug, user_id, source, at)


async def take_visit(db: Any, slug: str, user_id: str, since: int) -> str | None:
    """Where a follower came from, if they opened a counted link since `since`; the visit
    is used up."""
    source = await db.fetchval("SELECT source FROM follow_visit WHERE merchant_slug=$1"
                               " AND user_id=$2 AND at >= $3", slug, user_id, since)
    await db.execute("DELETE FROM follow_visit WHERE merchant_slug=$1 AND user_id=$2",
                     slug, user_id)
    return source
