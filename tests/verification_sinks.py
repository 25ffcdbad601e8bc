"""Where the contacts bridge's verification codes go in tests: a real SMTP server
(aiosmtpd) and a real HTTP SMS gateway (aiohttp), each in its own thread, keeping what
they receive so a test can read the code as the person would on their phone or in mail."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from mercato_ops.testnet import free_port

CODE = re.compile(r"\b(\d{6})\b")


class SmsGateway:
    """POST {"to", "text"} to /sms: answered 200 and kept."""

    def __init__(self, token: str = "") -> None:
        self.port = free_port()
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sms-gateway")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def receive(request: web.Request) -> web.Response:
            if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
                return web.json_response({"error": "unauthorized"}, status=401)
            body = await request.json()
            with self._lock:
                self.messages.append(body)
            return web.json_response({"queued": True})

        app = web.Application()
        app.router.add_post("/sms", receive)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> SmsGateway:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def sent_to(self, number: str) -> list[str]:
        with self._lock:
            return [m["text"] for m in self.messages if m.get("to") == number]

    async def code_for(self, number: str, *, after: int = 0, timeout: float = 30) -> str:
        """The code in the message to `number` after the first `after` ones."""
        return await _wait_code(lambda: self.sent_to(number)[after:], timeout)


class _Keep:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.sink.lock:
            self.sink.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class MailSink:
    """An SMTP server on localhost that keeps every message."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self._controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def sent_to(self, address: str) -> list[str]:
        with self.lock:
            found = [m for m in self.messages if m["To"] == address]
        return [str(m.get_payload(decode=True), "utf-8") for m in found]

    async def code_for(self, address: str, *, after: int = 0, timeout: float = 30) -> str:
        return await _wait_code(lambda: self.sent_to(address)[after:], timeout)


async def _wait_code(texts: Any, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        for text in texts():
            found = CODE.search(text)
            if found:
                return found.group(1)
        if time.monotonic() > deadline:
            raise AssertionError("no verification code arrived")
        await asyncio.sleep(0.2)


def contacts_settings(sms: SmsGateway, mail: MailSink) -> dict[str, Any]:
    """The `contacts` settings that send codes to these sinks."""
    return {"sms_webhook_url": sms.url, "sms_webhook_token": sms.token,
            "smtp": {"host": "127.0.0.1", "port": mail.port, "security": "none",
                     "from_address": "codes@mercato.test"}}

