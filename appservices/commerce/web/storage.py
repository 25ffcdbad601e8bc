"""Every SQL statement of web sign-in: sessions, one-time link tokens, rate-limit counters
and the commerce bot's DMs. The same SQL runs on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

from mercato.db import Database, transaction


@dataclass(frozen=True)
class SessionRow:
    id_hash: str
    user_id: str
    how: str
    created_at: int
    last_seen_at: int


async def insert_session(db: Database, id_hash: str, user_id: str, how: str, now: int) -> None:
    await db.execute(
        "INSERT INTO web_session (id_hash, user_id, how, created_at, last_seen_at) "
        "VALUES ($1, $2, $3, $4, $4)", id_hash, user_id, how, now)


async def get_session(db: Database, id_hash: str) -> SessionRow | None:
    row = await db.fetchrow(
        "SELECT id_hash, user_id, how, created_at, last_seen_at FROM web_session "
        "WHERE id_hash = $1", id_hash)
    return SessionRow(**dict(row)) if row else None


async def touch_session(db: Database, id_hash: str, now: int) -> None:
    await db.execute("UPDATE web_session SET last_seen_at = $2 WHERE id_hash = $1",
                     id_hash, now)


async def delete_session(db: Database, id_hash: str) -> None:
    await db.execute("DELETE FROM web_session WHERE id_hash = $1", id_hash)


async def prune(db: Database, idle_before: int, created_before: int, now: int,
                windows_before: int) -> None:
    """Drop dead sessions, spent or expired links and past rate-limit windows."""
    await db.execute("DELETE FROM web_session WHERE last_seen_at < $1 OR created_at < $2",
                     idle_before, created_before)
    await db.execute("DELETE FROM web_login_token WHERE expires_at < $1", now)
    await db.execute("DELETE FROM web_rate_limit WHERE window_start < $1", windows_before)


# -- one-time sign-in links ---------------------------------------------------------------

async def insert_login_token(db: Database, token_hash: str, user_id: str, now: int,
                             expires_at: int) -> None:
    await db.execute(
        "INSERT INTO web_login_token (token_hash, user_id, created_at, expires_at) "
        "VALUES ($1, $2, $3, $4)", token_hash, user_id, now, expires_at)


@dataclass(frozen=True)
class LoginTokenRow:
    user_id: str
    expires_at: int
    used_at: int | None


async def get_login_token(db: Database, token_hash: str) -> LoginTokenRow | None:
    row = await db.fetchrow(
        "SELECT user_id, expires_at, used_at FROM web_login_token WHERE token_hash = $1",
        token_hash)
    return LoginTokenRow(**dict(row)) if row else None


async def use_login_token(db: Database, token_hash: str, now: int, session_hash: str,
                          how: str) -> str | None:
    """Spend the link and open its session in one transaction: the user ID, or None when the
    link is unknown, used or expired (two tabs opening it at once: one wins)."""
    async with transaction(db) as conn:
        # One conditional UPDATE spends it: of two requests, only one finds it unused.
        row = await conn.fetchrow(
            "UPDATE web_login_token SET used_at = $2 WHERE token_hash = $1 "
            "AND used_at IS NULL AND expires_at > $2 RETURNING user_id", token_hash, now)
        if row is None:
            return None
        user_id = str(row["user_id"])
        await conn.execute(
            "INSERT INTO web_session (id_hash, user_id, how, created_at, last_seen_at) "
            "VALUES ($1, $2, $3, $4, $4)", session_hash, user_id, how, now)
        return user_id


# -- rate limits ----------------------------------------------------------------------------

async def count_hit(db: Database, bucket: str, window_start: int) -> int:
    """Count one request in the bucket's window; the number counted so far, this one too."""
    async with transaction(db) as conn:
        await conn.execute(
            "INSERT INTO web_rate_limit (bucket, window_start, hits) VALUES ($1, $2, 1) "
            "ON CONFLICT (bucket, window_start) DO UPDATE SET hits = web_rate_limit.hits + 1",
            bucket, window_start)
        hits = await conn.fetchval(
            "SELECT hits FROM web_rate_limit WHERE bucket = $1 AND window_start = $2",
            bucket, window_start)
    return int(hits)


# -- the commerce bot's DMs -----------------------------------------------------------------

async def signin_dm(db: Database, user_id: str) -> str | None:
    room_id = await db.fetchval("SELECT room_id FROM web_signin_dm WHERE user_id = $1", user_id)
    return str(room_id) if room_id else None


async def set_signin_dm(db: Database, user_id: str, room_id: str) -> None:
    await db.execute(
        "INSERT INTO web_signin_dm (user_id, room_id) VALUES ($1, $2) "
        "ON CONFLICT (user_id) DO UPDATE SET room_id = excluded.room_id", user_id, room_id)
