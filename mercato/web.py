"""HTTP pieces every component shares: /health, /metrics, JSON errors, serving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def json_error(status: int, errcode: str, error: str, **extra: Any) -> web.Response:
    """A Matrix-style error body: {"errcode": ..., "error": ...}."""
    return web.json_response({"errcode": errcode, "error": error, **extra}, status=status)


def add_health_routes(app: web.Application, component: str, is_ready: Callable[[], bool]) -> None:
    async def health(_: web.Request) -> web.Response:
        ready = is_ready()
        return web.json_response({"component": component,
                                  "status": "ok" if ready else "starting"},
                                 status=200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)


async def serve(app: web.Application, host: str, port: int,
                shutdown_timeout: float = 10.0) -> web.AppRunner:
    # Long-polling clients (/sync) would otherwise hold a shutdown for a minute.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
