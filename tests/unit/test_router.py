"""The scale profile's router, between clients and two upstream processes it forwards to.

The upstreams here are small aiohttp apps standing in for the processes' HTTP listeners:
what is tested is the proxy's own behaviour (routing, how many requests it keeps open);
the scale profile's tests (tests/scale/) run it in front of real Synapse workers.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from mercato_ops.router import Router
from tests.conftest import free_port

LONG_POLLS = 150  # more than aiohttp's default pool of 100 connections


async def _upstream(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def test_a_send_is_not_held_behind_many_clients_long_polls() -> None:
    """Every connected client keeps a /sync open; one more client's send goes through."""
    held: list[str] = []
    release = asyncio.Event()
    sent: list[str] = []

    async def sync(request: web.Request) -> web.Response:
        held.append(request.headers["Authorization"])
        await release.wait()
        return web.json_response({"next_batch": "s2"})

    async def send(request: web.Request) -> web.Response:
        sent.append(request.match_info["txn"])
        return web.json_response({"event_id": "$sent"})

    reader_app, main_app = web.Application(), web.Application()
    reader_app.router.add_get("/_matrix/client/v3/sync", sync)
    main_app.router.add_put("/_matrix/client/v3/rooms/{room}/send/{type}/{txn}", send)
    reader, reader_url = await _upstream(reader_app)
    main, main_url = await _upstream(main_app)
    router = Router(main_url, reader_url)
    port = free_port()
    runner = await router.start("127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async def long_poll(n: int) -> int:
                async with http.get(f"{base}/_matrix/client/v3/sync",
                                    headers={"Authorization": f"Bearer {n}"}) as resp:
                    return resp.status

            polls = [asyncio.create_task(long_poll(n)) for n in range(LONG_POLLS)]
            for _ in range(200):
                if len(held) == LONG_POLLS:
                    break
                await asyncio.sleep(0.05)
            assert len(held) == LONG_POLLS, "the router held back some clients' /sync"

            async with http.put(f"{base}/_matrix/client/v3/rooms/!r:x/send/m.room.message/t1",
                                json={"body": "hi"},
                                timeout=aiohttp.ClientTimeout(total=30)) as resp:
                assert resp.status == 200
                assert (await resp.json()) == {"event_id": "$sent"}
            assert sent == ["t1"]
            assert len(held) == LONG_POLLS and not any(p.done() for p in polls)

            release.set()
            assert await asyncio.gather(*polls) == [200] * LONG_POLLS
    finally:
        release.set()
        await router.close(runner)
        await reader.cleanup()
        await main.cleanup()
