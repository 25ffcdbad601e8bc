"""Every SQL statement of the Circle: circles, their members, recommendations, Space
children, and the reads the feed, the digest and the shops' stats make of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appservices.commerce.shops.storage import now_ms


@dataclass(frozen=True)
class Circle:
    user_id: str
    room_id: str | None
    space_id: str | None
    opted_in: bool
    digest_room_id: str | None
    digest_last_at: int | None


_CIRCLE = "user_id, room_id, space_id, opted_in, digest_room_id, digest_last_at"


def _circle(row: Any) -> Circle:
    return Circle(row["user_id"], row["room_id"], row["space_id"], bool(row["opted_in"]),
                  row["digest_room_id"], row["digest_last_at"])


async def get_circle(db: Any, user_id: str) -> Circle | None:
    row = await db.fetchrow(f"SELECT {_CIRCLE} FROM circle WHERE user_id=$1", user_id)
    return _circle(row) if row else None


async def circle_of_room(db: Any, room_id: str) -> Circle | None:
    row = await db.fetchrow(f"SELECT {_CIRCLE} FROM circle WHERE room_id=$1", room_id)
    return _circle(row) if row else None


async def ensure_circle(db: Any, user_id: str) -> None:
    now = now_ms()
    await db.execute("INSERT INTO circle (user_id, created_at, updated_at) VALUES ($1,$2,$2)"
                     " ON CONFLICT (user_id) DO NOTHING", user_id, now)


async def set_room(db: Any, user_id: str, room_id: str) -> None:
    await db.execute("UPDATE circle SET room_id=$1, updated_at=$2 WHERE user_id=$3",
                     room_id, now_ms(), user_id)


async def set_space(db: Any, user_id: str, space_id: str | None) -> None:
    await db.execute("UPDATE circle SET space_id=$1, updated_at=$2 WHERE user_id=$3",
                     space_id, now_ms(), user_id)


async def set_opted_in(db: Any, user_id: str, opted_in: bool) -> None:
    await db.execute("UPDATE circle SET opted_in=$1, updated_at=$2 WHERE user_id=$3",
                     opted_in, now_ms(), user_id)


async def opted_in_among(db: Any, user_ids: list[str]) -> set[str]:
    if not user_ids:
        return set()
    placeholders = ",".join(f"${i + 1}" for i in range(len(user_ids)))
    rows = await db.fetch(f"SELECT user_id FROM circle WHERE opted_in AND user_id IN"
                          f" ({placeholders})", *user_ids)
    return {r["user_id"] for r in rows}


# -- members ------------------------------------------------------------------------------

async def member_state(db: Any, owner_id: str, user_id: str) -> str | None:
    return await db.fetchval("SELECT state FROM circle_member WHERE owner_id=$1 AND user_id=$2",
                             owner_id, user_id)


async def set_member(db: Any, owner_id: str, user_id: str, state: str, how: str) -> None:
    """Record a member's state; `how` they came stays the first one recorded."""
    await db.execute(
        "INSERT INTO circle_member (owner_id, user_id, state, how, updated_at)"
        " VALUES ($1,$2,$3,$4,$5) ON CONFLICT (owner_id, user_id)"
        " DO UPDATE SET state=excluded.state, updated_at=excluded.updated_at",
        owner_id, user_id, state, how, now_ms())


async def members(db: Any, owner_id: str, states: tuple[str, ...]) -> list[str]:
    rows = await db.fetch("SELECT user_id, state FROM circle_member WHERE owner_id=$1"
                          " ORDER BY user_id", owner_id)
    return [r["user_id"] for r in rows if r["state"] in states]


async def circles_joined_by(db: Any, user_id: str) -> list[Circle]:
    """The circles `user_id` is in as a friend (joined)."""
    rows = await db.fetch(
        f"SELECT {', '.join('c.' + c for c in _CIRCLE.split(', '))} FROM circle c"
        " JOIN circle_member m ON m.owner_id=c.user_id WHERE m.user_id=$1"
        " AND m.state='joined' AND c.room_id IS NOT NULL", user_id)
    return [_circle(r) for r in rows]


# -- recommendations ------------------------------------------------------------------------

@dataclass(frozen=True)
class Recommendation:
    id: int
    txn_id: str
    owner_id: str
    room_id: str
    event_id: str | None
    merchant_slug: str
    sku: str | None
    source_room_id: str | None
    source_event_id: str | None
    note: str
    quote: str
    recommender_name: str
    price: str | None
    stock: str | None
    created_at: int


_REC = ("id, txn_id, owner_id, room_id, event_id, merchant_slug, sku, source_room_id,"
        " source_event_id, note, quote, recommender_name, price, stock, created_at")


def _recommendation(row: Any) -> Recommendation:
    return Recommendation(**{k: row[k] for k in row.keys()})


async def count_since(db: Any, owner_id: str, since_ms: int) -> tuple[int, int | None]:
    row = await db.fetchrow("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM"
                            " circle_recommendation WHERE owner_id=$1 AND created_at > $2",
                            owner_id, since_ms)
    return int(row["n"]), row["oldest"]


async def insert_recommendation(db: Any, *, txn_id: str, owner_id: str, room_id: str,
                                merchant_slug: str, sku: str | None,
                                source_room_id: str | None, source_event_id: str | None,
                                note: str, quote: str, recommender_name: str,
                                price: str | None, stock: str | None) -> Recommendation:
    await db.execute(
        f"INSERT INTO circle_recommendation ({_REC.removeprefix('id, ')})"
        " VALUES ($1,$2,$3,NULL,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
        " ON CONFLICT (txn_id) DO NOTHING",
        txn_id, owner_id, room_id, merchant_slug, sku, source_room_id, source_event_id, note,
        quote, recommender_name, price, stock, now_ms())
    found = await by_txn(db, txn_id)
    assert found is not None  # just written, in this transaction
    return found


async def by_txn(db: Any, txn_id: str) -> Recommendation | None:
    row = await db.fetchrow(f"SELECT {_REC} FROM circle_recommendation WHERE txn_id=$1",
                            txn_id)
    return _recommendation(row) if row else None


async def by_id(db: Any, rec_id: int) -> Recommendation | None:
    row = await db.fetchrow(f"SELECT {_REC} FROM circle_recommendation WHERE id=$1", rec_id)
    return _recommendation(row) if row else None


async def by_event(db: Any, event_id: str) -> Recommendation | None:
    row = await db.fetchrow(f"SELECT {_REC} FROM circle_recommendation WHERE event_id=$1",
                            event_id)
    return _recommendation(row) if row else None


async def mark_sent(db: Any, rec_id: int, event_id: str) -> None:
    await db.execute("UPDATE circle_recommendation SET event_id=$1 WHERE id=$2", event_id,
                     rec_id)


async def set_shown(db: Any, rec_id: int, price: str, stock: str) -> None:
    await db.execute("UPDATE circle_recommendation SET price=$1, stock=$2 WHERE id=$3",
                     price, stock, rec_id)


async def of_product(db: Any, slug: str, sku: str) -> list[Recommendation]:
    """The product's recommendations already posted (an unsent one is rendered when sent)."""
    rows = await db.fetch(f"SELECT {_REC} FROM circle_recommendation WHERE merchant_slug=$1"
                          " AND sku=$2 AND event_id IS NOT NULL", slug, sku)
    return [_recommendation(r) for r in rows]


async def in_rooms_since(db: Any, room_ids: list[str], since_ms: int,
                         limit: int) -> list[Recommendation]:
    if not room_ids:
        return []
    placeholders = ",".join(f"${i + 3}" for i in range(len(room_ids)))
    rows = await db.fetch(
        f"SELECT {_REC} FROM circle_recommendation WHERE event_id IS NOT NULL"
        f" AND created_at > $1 AND room_id IN ({placeholders})"
        " ORDER BY created_at DESC LIMIT $2", since_ms, limit, *room_ids)
    return [_recommendation(r) for r in rows]


# -- channel posts for the feed -----------------------------------------------------------------

async def followed_channels(db: Any, user_id: str) -> list[str]:
    rows = await db.fetch("SELECT room_id FROM follower WHERE user_id=$1 ORDER BY room_id",
                          user_id)
    return [r["room_id"] for r in rows]


async def posts_in_rooms_since(db: Any, room_ids: list[str], since_ms: int,
                               limit: int) -> list[dict[str, Any]]:
    """Campaign posts sent to these channels after `since_ms`, newest first."""
    if not room_ids:
        return []
    placeholders = ",".join(f"${i + 3}" for i in range(len(room_ids)))
    rows = await db.fetch(
        "SELECT o.room_id, o.event_id, o.sent_at, c.merchant_slug, c.fields, m.name"
        " FROM outbox o JOIN campaign c ON c.id=o.campaign_id"
        " JOIN merchant m ON m.slug=c.merchant_slug WHERE o.state='sent'"
        f" AND o.event_id IS NOT NULL AND o.sent_at > $1 AND o.room_id IN ({placeholders})"
        " ORDER BY o.sent_at DESC LIMIT $2", since_ms, limit, *room_ids)
    return [{k: r[k] for k in r.keys()} for r in rows]


# -- Spaces ---------------------------------------------------------------------------------------

async def space_children(db: Any, user_id: str) -> dict[str, str]:
    rows = await db.fetch("SELECT room_id, kind FROM circle_space_child WHERE user_id=$1",
                          user_id)
    return {r["room_id"]: r["kind"] for r in rows}


async def add_space_child(db: Any, user_id: str, room_id: str, kind: str) -> None:
    await db.execute("INSERT INTO circle_space_child (user_id, room_id, kind, added_at)"
                     " VALUES ($1,$2,$3,$4) ON CONFLICT (user_id, room_id) DO NOTHING",
                     user_id, room_id, kind, now_ms())


async def remove_space_child(db: Any, user_id: str, room_id: str) -> None:
    await db.execute("DELETE FROM circle_space_child WHERE user_id=$1 AND room_id=$2",
                     user_id, room_id)


# -- the digest ---------------------------------------------------------------------------------

async def set_digest(db: Any, user_id: str, room_id: str | None) -> None:
    await db.execute("UPDATE circle SET digest_room_id=$1, updated_at=$2 WHERE user_id=$3",
                     room_id, now_ms(), user_id)


async def mark_digest_sent(db: Any, user_id: str, at_ms: int, previous: int | None) -> bool:
    """True for the one caller that moves the digest on from `previous` (sent once)."""
    moved = await db.fetchval(
        "UPDATE circle SET digest_last_at=$1 WHERE user_id=$2 AND (digest_last_at=$3"
        " OR (digest_last_at IS NULL AND CAST($3 AS BIGINT) IS NULL)) RETURNING user_id",
        at_ms, user_id, previous)
    return moved is not None


async def digest_subscribers(db: Any) -> list[Circle]:
    rows = await db.fetch(f"SELECT {_CIRCLE} FROM circle WHERE digest_room_id IS NOT NULL")
    return [_circle(r) for r in rows]


# -- what shops see ----------------------------------------------------------------------------

async def shop_stats(db: Any, slug: str) -> dict[str, int]:
    """How often the shop's products and posts were recommended, and the follows and
    orders that came after a friend's recommendation of the shop (see docs/circle.md)."""
    row = await db.fetchrow(
        "SELECT COUNT(*) AS n, SUM(CASE WHEN sku IS NULL THEN 1 ELSE 0 END) AS posts"
        " FROM circle_recommendation WHERE merchant_slug=$1 AND event_id IS NOT NULL", slug)
    follows = await db.fetchval(
        "SELECT COUNT(DISTINCT f.user_id) FROM follower f JOIN channel ch ON ch.room_id=f.room_id"
        " WHERE ch.merchant_slug=$1 AND EXISTS (SELECT 1 FROM circle_recommendation r"
        " JOIN circle_member m ON m.owner_id=r.owner_id AND m.user_id=f.user_id"
        " AND m.state='joined' WHERE r.merchant_slug=$1 AND r.event_id IS NOT NULL"
        " AND r.created_at < f.followed_at)", slug)
    orders = await db.fetchval(
        "SELECT COUNT(DISTINCT o.id) FROM orders o JOIN order_item i ON i.order_id=o.id"
        " WHERE o.merchant_slug=$1 AND EXISTS (SELECT 1 FROM circle_recommendation r"
        " JOIN circle_member m ON m.owner_id=r.owner_id AND m.user_id=o.buyer_id"
        " AND m.state='joined' WHERE r.merchant_slug=$1 AND r.sku=i.sku"
        " AND r.event_id IS NOT NULL AND r.created_at < o.created_at)", slug)
    total = int(row["n"] or 0)
    posts = int(row["posts"] or 0)
    return {"recommendations": total, "products_recommended": total - posts,
            "posts_recommended": posts, "follows_through_circles": int(follows or 0),
            "orders_through_circles": int(orders or 0)}
