"""What the operator's Prometheus reads from the bridge's /metrics: invite conversion and
the chats the bridge opened, counted in the database (so restarts lose nothing).

The counts are read from the database when /metrics is asked for (a middleware), then
served by a collector, because prometheus_client collects synchronously.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridges.contacts.db import store
from mercato.db import Database


class ContactsCollector(Collector):
    def __init__(self) -> None:
        self.invites: dict[str, int] | None = None
        self.chats: dict[str, int] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.invites is not None:
            for key, what in (("created", "Invite links made"),
                              ("named", "Invite links that named a phone number or email"),
                              ("opened", "Invite links whose page was opened"),
                              ("converted", "Named invites whose person joined and opted in")):
                name = "joined" if key == "converted" else key
                yield CounterMetricFamily(f"mercato_contacts_invites_{name}", what,
                                          value=self.invites[key])
            yield GaugeMetricFamily("mercato_contacts_invite_conversion",
                                    "Converted invites per invite that named someone",
                                    value=store.conversion(self.invites))
        if self.chats is not None:
            yield CounterMetricFamily("mercato_contacts_chats_opened",
                                      "Chats the bridge opened between people",
                                      value=self.chats["opened"])
            yield GaugeMetricFamily("mercato_contacts_spaces",
                                    "Contacts spaces the bridge keeps", value=self.chats["spaces"])

    async def refresh(self, db: Database) -> None:
        self.invites = await store.invite_stats(db)
        self.chats = await store.chat_stats(db)


COLLECTOR = ContactsCollector()
REGISTRY.register(COLLECTOR)


def refresh_on_scrape(db: Database) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware reading the counts just before /metrics answers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/metrics":
            await COLLECTOR.refresh(db)
        return await handler(request)
    return middleware
