"""What the sign-in routes share besides the API context: the network's settings, the
commerce bot's link sender, an HTTP client for asking homeservers, and the tasks running
after an answer was sent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from appservices.commerce.web.dm import LinkSender
from mercato.config import MercatoConfig


@dataclass
class SigninServices:
    """What the sign-in routes need besides the API context."""

    network: MercatoConfig
    sender: LinkSender
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _http: aiohttp.ClientSession | None = None

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self._http is not None:
            await self._http.close()


SIGNIN = web.AppKey("mercato_web_signin", SigninServices)
