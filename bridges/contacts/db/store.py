"""The bridge's rows: keyed hashes of opt-ins, quota counters, tokens, summaries, counts.

Every function takes the database it works on. The same SQL runs on SQLite and
PostgreSQL. Nothing written here is a phone number, an email or an uploaded contact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mercato.db import Database, transaction

BATCH = 500


def now_ms() -> int:
    return int(time.time() * 1000)


class QuotaExceeded(Exception):
    def __init__(self, subject_kind: str, limit: int, retry_after_s: int) -> None:
        super().__init__(f"{subject_kind} quota of {limit} exceeded")
        self.subject_kind = subject_kind
        self.limit = limit
        self.retry_after_s = retry_after_s


# -- opt-ins ------------------------------------------------------------------------------

async def findable_owner(db: Database, digest: str) -> str | None:
    """Who can be found by this identifier: a verified opt-in only."""
    return await db.fetchval("SELECT user_id FROM findable WHERE digest=$1 AND verified",
                             digest)


async def add_findable(db: Database, digest: str, user_id: str, medium: str) -> str:
    """Record a verified opt-in: 'added', 'already' (this user's), or 'taken' (another
    user's, verified). An unverified claim (made before the bridge verified) gives way."""
    async with transaction(db) as conn:
        row = await conn.fetchrow("SELECT user_id, verified FROM findable WHERE digest=$1",
                                  digest)
        if row is not None and row["verified"]:
            return "already" if row["user_id"] == user_id else "taken"
        if row is not None:
            await conn.execute("DELETE FROM findable WHERE digest=$1", digest)
        await conn.execute(
            "INSERT INTO findable (digest, user_id, medium, verified, created_at)"
            " VALUES ($1, $2, $3, true, $4)", digest, user_id, medium, now_ms())
    return "added"


# -- verification codes -------------------------------------------------------------------

@dataclass(frozen=True)
class PendingCode:
    digest: str
    medium: str
    code_hash: str
    attempts: int


async def add_code(db: Database, user_id: str, digest: str, medium: str, code_hash: str,
                   expires_at: int) -> None:
    """A new code for this identifier replaces the one sent before (and its attempts)."""
    await db.execute(
        "INSERT INTO verification (user_id, digest, medium, code_hash, attempts, created_at,"
        " expires_at) VALUES ($1, $2, $3, $4, 0, $5, $6) ON CONFLICT (user_id, digest)"
        " DO UPDATE SET code_hash=excluded.code_hash, attempts=0,"
        " created_at=excluded.created_at, expires_at=excluded.expires_at",
        user_id, digest, medium, code_hash, now_ms(), expires_at)


async def pending_codes(db: Database, user_id: str) -> list[PendingCode]:
    rows = await db.fetch("SELECT digest, medium, code_hash, attempts FROM verification"
                          " WHERE user_id=$1 AND expires_at > $2 ORDER BY created_at",
                          user_id, now_ms())
    return [PendingCode(row["digest"], row["medium"], row["code_hash"], int(row["attempts"]))
            for row in rows]


async def remove_code(db: Database, user_id: str, digest: str) -> None:
    await db.execute("DELETE FROM verification WHERE user_id=$1 AND digest=$2",
                     user_id, digest)


async def count_wrong_code(db: Database, user_id: str, max_attempts: int) -> None:
    """One more wrong attempt against each of the user's codes; used-up codes go."""
    async with transaction(db) as conn:
        await conn.execute("UPDATE verification SET attempts = attempts + 1 WHERE user_id=$1",
                           user_id)
        await conn.execute("DELETE FROM verification WHERE user_id=$1 AND attempts >= $2",
                           user_id, max_attempts)


async def prune_codes(db: Database) -> None:
    await db.execute("DELETE FROM verification WHERE expires_at <= $1", now_ms())


async def remove_findable(db: Database, user_id: str, medium: str | None = None,
                          digest: str | None = None) -> int:
    query, args = "DELETE FROM findable WHERE user_id=$1", [user_id]
    if medium:
        query += f" AND medium=${len(args) + 1}"
        args.append(medium)
    if digest:
        query += f" AND digest=${len(args) + 1}"
        args.append(digest)
    async with transaction(db) as conn:
        count = await conn.fetchval(query.replace("DELETE", "SELECT COUNT(*)", 1), *args)
        await conn.execute(query, *args)
    return int(count or 0)


async def findable_counts(db: Database, user_id: str, *,
                          verified: bool = True) -> dict[str, int]:
    rows = await db.fetch("SELECT medium, COUNT(*) AS n FROM findable WHERE user_id=$1"
                          " AND verified=$2 GROUP BY medium", user_id, verified)
    return {row["medium"]: int(row["n"]) for row in rows}


async def owners_of(db: Database, digests: Sequence[str]) -> dict[str, str]:
    """digest → Matrix ID, for the digests that belong to an opted-in user."""
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(digests))
    for start in range(0, len(unique), BATCH):
        batch = unique[start:start + BATCH]
        marks = ", ".join(f"${i + 1}" for i in range(len(batch)))
        rows = await db.fetch(f"SELECT digest, user_id FROM findable WHERE verified"
                              f" AND digest IN ({marks})",
                              *batch)
        found.update({row["digest"]: row["user_id"] for row in rows})
    return found


# -- quotas -------------------------------------------------------------------------------

async def charge(db: Database, charges: Sequence[tuple[str, str, int]], window_start: int,
                 amount: int, retry_after_s: int, *, import_id: str | None = None,
                 run: tuple[str, str, int, int, int] | None = None) -> bool:
    """Count `amount` against each (kind, subject, limit); all or nothing.

    With `run` (user, source, contacts, identifiers, matched) the import's run is recorded
    in the same transaction. With `import_id` (the event that brought the file) an import
    is charged once: handled again after a crash, it returns False and changes nothing.
    Raises QuotaExceeded (and counts nothing) when any subject would pass its limit.
    """
    if amount <= 0 and run is None:
        return True
    async with transaction(db) as conn:
        if import_id is not None:
            # The mark of a charged import: a quota row of 0 under a subject of its own.
            first = await conn.fetchval(
                "INSERT INTO quota_use (subject, window_start, used) VALUES ($1, $2, 0)"
                " ON CONFLICT (subject, window_start) DO NOTHING RETURNING subject",
                f"import:{import_id}", window_start)
            if first is None:
                return False
        for kind, subject, limit in charges:
            used = await conn.fetchval(
                "INSERT INTO quota_use (subject, window_start, used) VALUES ($1, $2, $3)"
                " ON CONFLICT (subject, window_start)"
                " DO UPDATE SET used = quota_use.used + excluded.used RETURNING used",
                subject, window_start, amount)
            if int(used) > limit:
                raise QuotaExceeded(kind, limit, retry_after_s)  # rolls the transaction back
        if run is not None:
            await conn.execute(
                "INSERT INTO import_run (user_id, source, contacts, identifiers, matched,"
                " refused, created_at) VALUES ($1, $2, $3, $4, $5, NULL, $6)", *run, now_ms())
    return True


async def used(db: Database, subject: str, window_start: int) -> int:
    value = await db.fetchval("SELECT used FROM quota_use WHERE subject=$1 AND window_start=$2",
                              subject, window_start)
    return int(value or 0)


async def prune_quotas(db: Database, before_window: int) -> None:
    await db.execute("DELETE FROM quota_use WHERE window_start < $1", before_window)


# -- identity-service tokens --------------------------------------------------------------

async def add_token(db: Database, token_hash: str, user_id: str,
                    expires_at: int | None = None) -> None:
    """A token; `expires_at` (ms) for the short-lived ones the bot hands out."""
    await db.execute("INSERT INTO identity_token (token_hash, user_id, created_at, expires_at)"
                     " VALUES ($1, $2, $3, $4)", token_hash, user_id, now_ms(), expires_at)


async def token_owner(db: Database, token_hash: str) -> str | None:
    return await db.fetchval("SELECT user_id FROM identity_token WHERE token_hash=$1"
                             " AND (expires_at IS NULL OR expires_at > $2)",
                             token_hash, now_ms())


async def prune_tokens(db: Database) -> None:
    await db.execute("DELETE FROM identity_token WHERE expires_at IS NOT NULL"
                     " AND expires_at <= $1", now_ms())


# -- invites ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Invite:
    code: str
    inviter: str
    room_id: str
    medium: str | None
    created_at: int
    converted_user: str | None


_INVITE_COLUMNS = "code, inviter, room_id, medium, created_at, converted_user"


def _invite(row: Any) -> Invite:
    return Invite(row["code"], row["inviter"], row["room_id"], row["medium"],
                  int(row["created_at"]), row["converted_user"])


async def add_invite(db: Database, code: str, inviter: str, room_id: str,
                     digest: str | None, medium: str | None) -> None:
    await db.execute("INSERT INTO invite (code, inviter, room_id, digest, medium, created_at)"
                     " VALUES ($1, $2, $3, $4, $5, $6)",
                     code, inviter, room_id, digest, medium, now_ms())


async def invites_since(db: Database, inviter: str, since_ms: int) -> int:
    value = await db.fetchval("SELECT COUNT(*) FROM invite WHERE inviter=$1 AND created_at >= $2",
                              inviter, since_ms)
    return int(value or 0)


async def invite(db: Database, code: str) -> Invite | None:
    row = await db.fetchrow(f"SELECT {_INVITE_COLUMNS} FROM invite WHERE code=$1", code)
    return _invite(row) if row else None


async def mark_invite_opened(db: Database, code: str) -> None:
    await db.execute("UPDATE invite SET opened_at=$1 WHERE code=$2 AND opened_at IS NULL",
                     now_ms(), code)


async def convert_invites(db: Database, digest: str, user_id: str) -> list[Invite]:
    """Invites of this identifier not yet converted, now marked as converted by `user_id`.

    A user's own invites are left alone (inviting yourself converts nothing).
    """
    async with transaction(db) as conn:
        rows = await conn.fetch(f"SELECT {_INVITE_COLUMNS} FROM invite WHERE digest=$1"
                                " AND converted_user IS NULL AND inviter <> $2"
                                " ORDER BY created_at", digest, user_id)
        if rows:
            await conn.execute("UPDATE invite SET converted_user=$1, converted_at=$2"
                               " WHERE digest=$3 AND converted_user IS NULL AND inviter <> $1",
                               user_id, now_ms(), digest)
    return [_invite(row) for row in rows]


async def invite_stats(db: Database) -> dict[str, int]:
    row = await db.fetchrow(
        "SELECT COUNT(*) AS created, COUNT(digest) AS named, COUNT(opened_at) AS opened,"
        " COUNT(converted_at) AS converted FROM invite")
    keys = ("created", "named", "opened", "converted")
    return {key: int(row[key] or 0) if row else 0 for key in keys}


def conversion(invites: dict[str, int]) -> float:
    """Converted invites per invite that named someone (only those can convert)."""
    return invites["converted"] / invites["named"] if invites.get("named") else 0.0


async def chat_stats(db: Database) -> dict[str, int]:
    opened = await db.fetchval("SELECT COUNT(DISTINCT room_id) FROM opened_chat")
    spaces = await db.fetchval("SELECT COUNT(*) FROM contacts_space")
    return {"opened": int(opened or 0), "spaces": int(spaces or 0)}


async def remove_token(db: Database, token_hash: str) -> None:
    await db.execute("DELETE FROM identity_token WHERE token_hash=$1", token_hash)


# -- summaries and counts -----------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    event_id: str
    user_id: str
    room_id: str
    matches: list[str]


async def save_summary(db: Database, event_id: str, user_id: str, room_id: str,
                       matches: Sequence[str]) -> None:
    await db.execute(
        "INSERT INTO import_summary (event_id, user_id, room_id, matches, created_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        event_id, user_id, room_id, json.dumps(list(matches)), now_ms())


async def summary(db: Database, event_id: str) -> Summary | None:
    row = await db.fetchrow("SELECT event_id, user_id, room_id, matches FROM import_summary"
                            " WHERE event_id=$1", event_id)
    if row is None:
        return None
    return Summary(row["event_id"], row["user_id"], row["room_id"], json.loads(row["matches"]))


async def latest_summary(db: Database, user_id: str, room_id: str) -> Summary | None:
    row = await db.fetchrow("SELECT event_id FROM import_summary WHERE user_id=$1 AND room_id=$2"
                            " ORDER BY created_at DESC LIMIT 1", user_id, room_id)
    return await summary(db, row["event_id"]) if row else None


async def prune_summaries(db: Database, before_ms: int) -> None:
    await db.execute("DELETE FROM import_summary WHERE created_at < $1", before_ms)


async def record_run(db: Database, user_id: str, source: str, contacts: int, identifiers: int,
                     matched: int, refused: str | None = None) -> None:
    await db.execute(
        "INSERT INTO import_run (user_id, source, contacts, identifiers, matched, refused,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        user_id, source, contacts, identifiers, matched, refused, now_ms())


async def stats(db: Database) -> dict[str, Any]:
    invites: dict[str, Any] = dict(await invite_stats(db))
    invites["conversion"] = round(conversion(invites), 4)
    findable = await db.fetch("SELECT medium, COUNT(*) AS n, COUNT(DISTINCT user_id) AS users"
                              " FROM findable WHERE verified GROUP BY medium")
    users = await db.fetchval("SELECT COUNT(DISTINCT user_id) FROM findable WHERE verified")
    unverified = await db.fetchval("SELECT COUNT(*) FROM findable WHERE NOT verified")
    runs = await db.fetch(
        "SELECT source, COUNT(*) AS runs, COALESCE(SUM(contacts), 0) AS contacts,"
        " COALESCE(SUM(identifiers), 0) AS identifiers, COALESCE(SUM(matched), 0) AS matched,"
        " SUM(CASE WHEN refused IS NULL THEN 0 ELSE 1 END) AS refused"
        " FROM import_run GROUP BY source")
    return {
        "findable_users": int(users or 0),
        "findable": {row["medium"]: int(row["n"]) for row in findable},
        # Opt-ins from before the bridge verified: kept, but no one finds them.
        "findable_unverified": int(unverified or 0),
        "imports": {row["source"]: {"runs": int(row["runs"]), "contacts": int(row["contacts"]),
                                    "identifiers": int(row["identifiers"]),
                                    "matched": int(row["matched"]),
                                    "refused": int(row["refused"] or 0)} for row in runs},
        "invites": invites,
        "chats": await chat_stats(db),
    }


# -- the Contacts space and the chats the bridge opened -----------------------------------

async def space_of(db: Database, user_id: str) -> str | None:
    return await db.fetchval("SELECT room_id FROM contacts_space WHERE user_id=$1", user_id)


async def set_space(db: Database, user_id: str, room_id: str) -> None:
    await db.execute("INSERT INTO contacts_space (user_id, room_id, created_at)"
                     " VALUES ($1, $2, $3)", user_id, room_id, now_ms())


async def chat_between(db: Database, user_id: str, other: str) -> str | None:
    """The chat the bridge opened for these two, whichever of them asked."""
    return await db.fetchval(
        "SELECT room_id FROM opened_chat WHERE room_id IS NOT NULL AND"
        " ((user_id=$1 AND other_user=$2) OR (user_id=$2 AND other_user=$1))"
        " ORDER BY created_at LIMIT 1", user_id, other)


async def add_opened_chat(db: Database, user_id: str, other: str, room_id: str) -> None:
    await db.execute("INSERT INTO opened_chat (user_id, other_user, room_id, created_at)"
                     " VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, other_user)"
                     " DO UPDATE SET room_id=excluded.room_id",
                     user_id, other, room_id, now_ms())


async def mark_in_space(db: Database, user_id: str, room_id: str) -> None:
    await db.execute("UPDATE opened_chat SET in_space_at=$1 WHERE user_id=$2 AND room_id=$3"
                     " AND in_space_at IS NULL", now_ms(), user_id, room_id)


async def chats_not_in_space(db: Database) -> list[tuple[str, str]]:
    rows = await db.fetch("SELECT user_id, room_id FROM opened_chat WHERE room_id IS NOT NULL"
                          " AND in_space_at IS NULL ORDER BY created_at")
    return [(row["user_id"], row["room_id"]) for row in rows]


async def is_opened_chat(db: Database, room_id: str, member: str) -> bool:
    """Whether the bridge opened this room for a pair `member` belongs to."""
    value = await db.fetchval("SELECT 1 FROM opened_chat WHERE room_id=$1 AND"
                              " (user_id=$2 OR other_user=$2) LIMIT 1", room_id, member)
    return value is not None
