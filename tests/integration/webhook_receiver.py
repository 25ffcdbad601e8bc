"""A shop's back-end receiving Mercato's webhooks: HTTPS on 127.0.0.1 (the test certificate),
checking every signature, processing each event ID once, and misbehaving on request
(answering 500, being down, answering too late)."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from appservices.commerce.webhooks.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    BadSignature,
    verify,
)
from tests.integration.local_https import Certificate


class WebhookReceiver:
    def __init__(self, certificate: Certificate, secret: str = "") -> None:
        self.secret = secret
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(certificate.cert, certificate.key)
        self.port = 0
        self.arrivals: list[str] = []  # every event ID POSTed and signed right, repeats too
        self.processed: list[dict[str, Any]] = []  # each event's body, once, in order
        self.bad_signatures: list[str] = []
        self.fail_next = 0  # answer 500 to this many more deliveries
        self.late: dict[str, float] = {}  # event ID → seconds to wait before answering it
        self.clock: Callable[[], int] = lambda: int(time.time())  # the receiver's time, s
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/mercato/events"

    @property
    def processed_ids(self) -> list[str]:
        return [body["id"] for body in self.processed]

    async def start(self) -> WebhookReceiver:
        """Listen (again, on the same port once it had one)."""
        app = web.Application()
        app.router.add_post("/mercato/events", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.tls,
                           reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Down: nothing listens on the port until `start`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` events were processed."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.processed) >= count), timeout)

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(self.secret, request.headers.get(SIGNATURE_HEADER, ""), body,
                   now=self.clock())
        except BadSignature as e:
            self.bad_signatures.append(str(e))
            return web.Response(status=400, text=f"bad signature: {e}")
        event = json.loads(body)
        assert request.headers[EVENT_ID_HEADER] == event["id"]
        self.arrivals.append(event["id"])
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500, text="our database is down")
        if event["id"] not in self.processed_ids:  # a repeat is acknowledged, not redone
            async with self._arrived:
                self.processed.append(event)
                self._arrived.notify_all()
        delay = self.late.pop(event["id"], 0.0)
        if delay:
            await asyncio.sleep(delay)
        return web.json_response({"received": True})
