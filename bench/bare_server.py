"""The references for the intake benchmark: bare aiohttp transaction handlers.

`bare_server.py PORT` only parses the JSON. `bare_server.py PORT --persist FILE` also
writes each transaction's events to SQLite (WAL, synchronous=FULL: durable when it
answers) in one executemany and one commit, with the stdlib driver in the handler:
the floor for any handler that persists before answering, on this disk.
"""

import json
import sqlite3
import sys

from aiohttp import web


def main() -> None:
    port = int(sys.argv[1])
    db = None
    if sys.argv[2:3] == ["--persist"]:
        db = sqlite3.connect(sys.argv[3], isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY, txn_id TEXT,"
                   " event_id TEXT UNIQUE, room_id TEXT, event_json TEXT)")

    async def transaction(request: web.Request) -> web.Response:
        body = await request.json()
        events = body.get("events")
        if not isinstance(events, list):
            return web.json_response({"errcode": "M_BAD_JSON"}, status=400)
        if db is not None:
            txn_id = request.match_info["txn_id"]
            db.execute("BEGIN")
            db.executemany("INSERT INTO inbox (txn_id, event_id, room_id, event_json)"
                           " VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                           [(txn_id, e.get("event_id"), e.get("room_id"), json.dumps(e))
                            for e in events])
            db.execute("COMMIT")
        return web.json_response({})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_put("/_matrix/app/v1/transactions/{txn_id}", transaction)
    app.router.add_get("/health", lambda _: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *_: None)


if __name__ == "__main__":
    main()
