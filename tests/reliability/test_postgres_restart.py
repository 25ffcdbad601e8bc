"""Commerce's PostgreSQL restarts, and then stays down for ten seconds, under load.

The database is a private cluster (`private_postgres.py`): the machine's shared
server is never touched. First `pg_ctl restart -m fast` while API calls run and a
campaign goes out; then the server is stopped for OUTAGE_SECONDS while the API is
called, a buyer follows the channels (Synapse's transactions meet the outage) and
the next campaign falls due; then it starts again.

What must hold: a request that meets the outage fails alone, with 503 and a sentence
(never a 500 traceback, never a hang); the same commerce process serves again once
the database is back, without a restart; every follow is recorded once; every post
is in every channel once and in order.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.reliability.harness import (
    Harness,
    check_exactly_once_in_order,
    draft_rounds,
    posts_in,
    schedule,
    until,
    wait_all_sent,
)
from tests.reliability.private_postgres import PrivatePostgres

SHOPS = 2
OUTAGE_SECONDS = 10


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        server.create_database("commerce")
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_harness(tmp_path: Path, postgres: PrivatePostgres) -> Iterator[Harness]:
    running = Harness(tmp_path, commerce={"database": postgres.url("commerce")})
    try:
        yield running
    finally:
        running.stop_all()


class ApiLoad:
    """API calls in a loop (a read and a write, by turns) until stopped; every answer kept."""

    def __init__(self, api: Api, slug: str, key: str) -> None:
        self.api, self.slug, self.key = api, slug, key
        self.answers: list[tuple[int, Any]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                if n % 2:
                    answer = await self.api.call("GET", f"/shops/{self.slug}", self.key)
                else:
                    answer = await self.api.call("PATCH", f"/shops/{self.slug}", self.key,
                                                 {"description": f"Edit {n}"})
            except aiohttp.ClientError as e:  # commerce itself went away: recorded as 0
                answer = (0, f"{type(e).__name__}: {e}")
            self.answers.append(answer)
            await asyncio.sleep(0.05)

    def __enter__(self) -> ApiLoad:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    async def stopped(self) -> list[tuple[int, Any]]:
        self._stop.set()
        assert self._task is not None
        await self._task
        return self.answers


def check_clear_failures(answers: list[tuple[int, Any]]) -> Counter[int]:
    """Only successes and 503s that say what happened; never a 500."""
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 503}, [a for a in answers if a[0] not in (200, 503)]
    for status, body in answers:
        if status == 503:
            assert body["errcode"] == "MERCATO_UNAVAILABLE", body
            assert "database" in body["error"] and "try again" in body["error"].lower(), body
    return statuses


async def test_postgres_restart_and_outage_fail_single_requests_and_lose_nothing(
        pg_harness: Harness, postgres: PrivatePostgres, http) -> None:
    harness = pg_harness
    harness.start_synapse()
    harness.start_commerce()
    assert harness.commerce is not None
    pid = harness.commerce.pid
    api = Api(harness, http)
    owner = await new_user(harness, http, "owner")
    follower = await new_user(harness, http, "follower")
    latecomer = await new_user(harness, http, "late")
    shops = [await open_shop(api, owner.user_id, quota=20) for _ in range(SHOPS)]
    rooms = {slug: await follower.join(f"#shop_{slug}:localhost") for slug, _ in shops}
    order, campaigns = await draft_rounds(api, shops, 3)

    # 1. A fast restart while the API is called and the first campaign goes out.
    slug, key = shops[0]
    with ApiLoad(api, slug, key) as load:
        await asyncio.sleep(1)
        for slug_n, key_n in shops:
            await schedule(api, slug_n, key_n, order[slug_n][0])
        await asyncio.to_thread(postgres.restart, "fast")
        await asyncio.sleep(2)
    restart_answers = check_clear_failures(await load.stopped())
    assert restart_answers[200] > 0

    # 2. Down for OUTAGE_SECONDS: the API, Synapse's transactions and campaign 2 meet it.
    due = int(time.time() * 1000) + 3000
    for slug_n, key_n in shops:
        await schedule(api, slug_n, key_n, order[slug_n][1], due)
        await schedule(api, slug_n, key_n, order[slug_n][2], due + 1000)
    await asyncio.to_thread(postgres.stop, "fast")
    stopped_at = time.monotonic()
    with ApiLoad(api, slug, key) as load:
        for room_id in rooms.values():
            await latecomer.join(room_id)
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
    outage_answers = check_clear_failures(await load.stopped())
    assert outage_answers[503] > 0 and outage_answers[200] == 0, outage_answers
    assert harness.commerce.poll() is None, "commerce must not exit when its database does"
    await asyncio.to_thread(postgres.start)
    back_at = time.monotonic()

    # 3. The same process catches up: follows, campaigns, the API.
    def followed() -> bool:
        return harness.rows("SELECT COUNT(*) FROM follower WHERE user_id=?",
                            latecomer.user_id)[0][0] == SHOPS

    await until(followed, 60, "the follows made during the outage recorded")
    await wait_all_sent(api, campaigns, 60)
    catch_up = time.monotonic() - back_at
    status, answer = await api.call("PATCH", f"/shops/{slug}", key, {"description": "After"})
    assert status == 200, answer
    async with http.get(f"{harness.commerce_url}/health") as resp:
        assert resp.status == 200
    assert harness.commerce.poll() is None and harness.commerce.pid == pid

    posts = {slug_n: await posts_in(follower, room_id) for slug_n, room_id in rooms.items()}
    lost, doubled = check_exactly_once_in_order(posts, order)
    assert harness.rows("SELECT COUNT(*) FROM follow_log WHERE user_id=?",
                        latecomer.user_id)[0][0] == SHOPS
    assert harness.rows("SELECT COUNT(*) FROM as_inbox WHERE handled_at IS NULL")[0][0] == 0
    assert harness.rows("SELECT COUNT(*) FROM as_inbox WHERE failed")[0][0] == 0
    # Said once per outage, not a traceback every pass.
    loud = Counter(e["event"] for e in harness.commerce_events() if e.get("event") in (
        "delivery.pass_failed", "queue.pass_failed", "queue.drain_failed", "inbox.pass_failed",
        "inbox.room_failed", "inbox.handler_failed"))
    assert not loud, loud
    # Campaign delivery and the message outbox run every second, so each meets the outage
    # (and maybe the restart); the inbox only when a transaction gets through while the
    # database is down.
    for loop, least in (("delivery", 1), ("outbox", 1), ("inbox", 0)):
        down = harness.logged(f"{loop}.database_unavailable")
        assert least <= len(down) <= 2, (loop, down)
        assert len(harness.logged(f"{loop}.database_back")) == len(down), loop
    print(f"\nRESULT postgres restart: answers={dict(restart_answers)}; "
          f"outage {OUTAGE_SECONDS}s: answers={dict(outage_answers)} "
          f"catch_up={catch_up:.1f}s posts={sum(len(p) for p in posts.values())} "
          f"lost={lost} doubled={doubled}")
