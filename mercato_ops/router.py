"""The scale profile's front door: one port for clients, requests routed to Synapse workers.

Synapse's worker documentation lists which endpoints a generic worker can serve;
whoever sits in front must route them. Synapse cannot do that itself, so this
small aiohttp proxy does, with the documented patterns for reads (sync, event
streams, room history, the room directory, profiles, and federation reads and
transactions). Everything else goes to the main process. In production
docker-compose.yml can put nginx there instead, with the same patterns.
"""

from __future__ import annotations

import asyncio
import re
import signal

import aiohttp
from aiohttp import web

from mercato.logging import get_logger
from mercato.web import serve

log = get_logger(__name__)

# From Synapse's workers documentation (generic_worker endpoints): what reads can go.
READ_PATTERNS = tuple(re.compile(p) for p in (
    r"^/_matrix/client/(r0|v3)/sync$",
    r"^/_matrix/client/(api/v1|r0|v3)/events$",
    r"^/_matrix/client/(api/v1|r0|v3)/initialSync$",
    r"^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/messages$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/(context|members|joined_members|state)(/|$)",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$",
    r"^/_matrix/client/(r0|v3|unstable)/profile/",
    r"^/_matrix/client/(r0|v3|unstable)/joined_rooms$",
    r"^/_matrix/client/v1/rooms/[^/]+/hierarchy$",
    r"^/_matrix/federation/v1/(event|state|state_ids|backfill|get_missing_events|publicRooms"
    r"|query|make_join|make_leave|send_join|send_leave|event_auth|user/devices)/",
    r"^/_matrix/federation/v2/(send_join|send_leave)/",
    r"^/_matrix/federation/v1/send/",
    r"^/_matrix/key/v2/query",
))

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate",
                        "proxy-authorization", "te", "trailers", "transfer-encoding",
                        "upgrade", "host", "content-length"})


def upstream_for(path: str, method: str, main: str, reader: str) -> str:
    """Which process serves this request (sans I/O, so it is tested directly)."""
    if method in ("GET", "HEAD") or path.startswith("/_matrix/federation/"):
        if any(pattern.match(path) for pattern in READ_PATTERNS):
            return reader
    if path.startswith("/_matrix/federation/v1/send/"):
        return reader
    return main


class Router:
    def __init__(self, main_url: str, reader_url: str) -> None:
        self.main_url = main_url
        self.reader_url = reader_url
        self.session: aiohttp.ClientSession | None = None
        self.app = web.Application(client_max_size=100 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.forward)

    async def forward(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        target = upstream_for(request.path, request.method, self.main_url, self.reader_url)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        # Keep the chain a TLS proxy in front of us started: Synapse rate-limits by it.
        forwarded = request.headers.get("X-Forwarded-For")
        remote = request.remote or "127.0.0.1"
        headers["X-Forwarded-For"] = f"{forwarded}, {remote}" if forwarded else remote
        headers["X-Forwarded-Proto"] = request.scheme
        body = await request.read() if request.can_read_body else None
        try:
            async with self.session.request(request.method, target + request.path_qs,
                                            headers=headers, data=body,
                                            allow_redirects=False) as upstream:
                response = web.StreamResponse(status=upstream.status, headers={
                    k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP})
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError as e:
            log.warning("router.upstream_failed", upstream=target, path=request.path,
                        error=str(e))
            return web.json_response({"errcode": "M_UNKNOWN",
                                      "error": "The homeserver is restarting; try again."},
                                     status=502)

    async def start(self, host: str, port: int) -> web.AppRunner:
        # No cap on connections to the upstreams: every connected client holds one for its
        # /sync long-poll, and aiohttp's default pool (100) made the 101st client's requests
        # — its sends too — wait for someone's long-poll to end. nginx has no such cap
        # either; Synapse's own limits apply behind us.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False)
        runner = await serve(self.app, host, port, shutdown_timeout=2.0)
        log.info("router.listening", port=port, main=self.main_url, reader=self.reader_url)
        return runner

    async def close(self, runner: web.AppRunner) -> None:
        await runner.cleanup()
        if self.session is not None:
            await self.session.close()

    async def run(self, host: str, port: int) -> None:
        runner = await self.start(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await self.close(runner)
