"""Another process holds commerce.db's write lock while transactions arrive.

SQLite waits up to its busy timeout (10 s, mercato/db.py) for the lock; the
component's one connection serves its requests in turn. A short lock is waited
out: the transaction endpoint answers 200 late. A lock held longer than that (here
by a writer that commits, as an operator's sqlite3 shell would) makes storing
fail: the endpoint answers 503, never 200, so Synapse sends the transaction again.
Either way everything is handled once the lock is gone, the appservice recovers
without a restart, and nothing is lost or stored twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from typing import Any

from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.reliability.harness import Harness, until

SHORT_LOCK = 3.0
LONG_LOCK = 13.0  # past the 10 s busy timeout


class WriteLock:
    """BEGIN EXCLUSIVE on the database from another connection, in a thread."""

    def __init__(self, path: str, seconds: float, write: bool) -> None:
        self.path, self.seconds, self.write = path, seconds, write
        self.taken = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            if self.write:
                conn.execute("CREATE TABLE IF NOT EXISTS test_lock_probe (at REAL)")
                conn.execute("INSERT INTO test_lock_probe VALUES (?)", (time.time(),))
            self.taken.set()
            time.sleep(self.seconds)
            conn.execute("COMMIT" if self.write else "ROLLBACK")
        finally:
            conn.close()

    async def __aenter__(self) -> WriteLock:
        self._thread.start()
        await asyncio.to_thread(self.taken.wait, 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._thread.join, self.seconds + 10)


def _event(room_id: str) -> dict[str, Any]:
    return {"type": "m.room.message", "room_id": room_id, "sender": "@someone:localhost",
            "event_id": f"$busy-{uuid.uuid4().hex}", "origin_server_ts": 1,
            "content": {"msgtype": "m.text", "body": "hello"}}


async def _put_transaction(harness: Harness, http, txn_id: str,
                           body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    async with http.put(f"{harness.commerce_url}/_matrix/app/v1/transactions/{txn_id}",
                        json=body, headers={"Authorization":
                                            f"Bearer {harness.config.commerce.hs_token}"}) as r:
        return r.status, await r.json(content_type=None), time.monotonic() - started


async def test_locked_database_delays_or_refuses_but_loses_nothing(harness: Harness,
                                                                  http) -> None:
    harness.start_synapse()
    harness.start_commerce()
    assert harness.commerce is not None
    pid = harness.commerce.pid
    api = Api(harness, http)
    owner = await new_user(harness, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    channel = f"#shop_{slug}:localhost"
    buyers = [await new_user(harness, http, f"buyer{n}") for n in range(2)]
    txns = {f"busy-{n}-{uuid.uuid4().hex}": {"events": [_event("!elsewhere:localhost")]}
            for n in range(2)}
    (short_txn, short_body), (long_txn, long_body) = txns.items()
    outcomes = {}

    # A short lock: waited out.
    async with WriteLock(str(harness.commerce_db_path), SHORT_LOCK, write=False):
        await buyers[0].join(channel)
        status, answer, took = await _put_transaction(harness, http, short_txn, short_body)
    outcomes["short"] = (status, round(took, 1))
    assert status == 200 and took >= SHORT_LOCK - 1, (status, answer, took)

    # A long lock by a writer: the wait runs out; the transaction is refused, not lost.
    # Let the first lock's work finish, so our transaction meets the second lock first.
    await until(lambda: harness.rows("SELECT COUNT(*) FROM as_inbox WHERE handled_at IS NULL"
                                     )[0][0] == 0, 30, "the inbox drained")

    async def join_soon() -> None:
        await asyncio.sleep(0.5)  # after our transaction, so it is first in line
        await buyers[1].join(channel)

    async with WriteLock(str(harness.commerce_db_path), LONG_LOCK, write=True):
        (status, answer, took), _ = await asyncio.gather(
            _put_transaction(harness, http, long_txn, long_body), join_soon())
        api_status, api_answer = await api.call("PATCH", f"/shops/{slug}", key,
                                                {"description": "Changed under a lock"})
    outcomes["long"] = (status, round(took, 1))
    assert status in (200, 503), answer
    if status == 503:
        assert answer == {"errcode": "M_UNKNOWN",
                          "error": "Could not store the transaction; retry later"}
        assert harness.rows("SELECT COUNT(*) FROM as_transaction WHERE txn_id=?",
                            long_txn)[0][0] == 0, "503 must mean: nothing stored"
        # Synapse sends it again, as it would.
        assert (await _put_transaction(harness, http, long_txn, long_body))[0] == 200
    # An API call that met the lock either waited or failed whole, with a clear sentence.
    assert api_status in (200, 503), api_answer
    if api_status == 503:
        assert api_answer["errcode"] == "MERCATO_UNAVAILABLE", api_answer
        assert "nothing was changed" in api_answer["error"]
        status, shop = await api.call("GET", f"/shops/{slug}", key)
        assert shop["description"] != "Changed under a lock"

    # Everything is handled once the lock is gone, by the same process.
    def followed() -> bool:
        return all(harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=?",
                                b.user_id)[0][0] == 1 for b in buyers)

    await until(followed, 30, "both follows recorded after the lock")
    await until(lambda: harness.rows("SELECT COUNT(*) FROM as_inbox WHERE handled_at IS NULL"
                                     )[0][0] == 0, 30, "the inbox drained")
    for txn_id, body in txns.items():
        assert harness.rows("SELECT COUNT(*) FROM as_transaction WHERE txn_id=?",
                            txn_id)[0][0] == 1
        assert harness.rows("SELECT COUNT(*) FROM as_inbox WHERE event_id=?",
                            body["events"][0]["event_id"])[0][0] == 1
    for buyer in buyers:
        assert harness.rows("SELECT COUNT(*) FROM follow_log WHERE user_id=?",
                            buyer.user_id)[0][0] == 1
    assert harness.commerce.poll() is None and harness.commerce.pid == pid
    async with http.get(f"{harness.commerce_url}/health") as resp:
        assert resp.status == 200
    status, _ = await api.call("PATCH", f"/shops/{slug}", key, {"description": "After"})
    assert status == 200
    print(f"\nRESULT sqlite_busy short={outcomes['short']} long={outcomes['long']} "
          f"api_under_lock={api_status} lost=0 doubled=0")
