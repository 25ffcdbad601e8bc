"""Who a user's friends are, as the bridge knows them: the opted-in people their imports
found, and the people whose imports found them (the Circle asks, docs/circle.md).

Only the import summaries the bridge keeps for a while (their Matrix IDs, never the
numbers or addresses) are read; a summary pruned is a friendship the bridge forgot.
"""

from __future__ import annotations

import json

from mercato.db import Database


async def friends_of(db: Database, user_id: str) -> dict[str, set[str]]:
    """Each friend of `user_id` and who found whom: {"you"} (their import found them),
    {"them"} (the friend's import found this user), or both."""
    found: dict[str, set[str]] = {}
    pattern = "%" + json.dumps(user_id) + "%"
    rows = await db.fetch("SELECT user_id, matches FROM import_summary WHERE user_id=$1"
                          " OR matches LIKE $2", user_id, pattern)
    for row in rows:
        matches = json.loads(row["matches"])
        if row["user_id"] == user_id:
            for match in matches:
                if match != user_id:
                    found.setdefault(match, set()).add("you")
        elif user_id in matches:  # LIKE's _ matches any character: read the list
            found.setdefault(row["user_id"], set()).add("them")
    if not found:
        return found
    # Someone who stopped being findable is no longer found by their contacts' imports.
    placeholders = ",".join(f"${i + 1}" for i in range(len(found)))
    findable = {r["user_id"] for r in await db.fetch(
        f"SELECT DISTINCT user_id FROM findable WHERE user_id IN ({placeholders})",
        *found)}
    return {friend: how for friend, how in found.items()
            if "them" in how or friend in findable}
