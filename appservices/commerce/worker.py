"""The commerce delivery worker: one background loop that hands due campaigns' posts to the
outbox and marks campaigns sent once their posts are; woken at once when a campaign is
scheduled, else every second.

A failing pass is logged once per outage (mercato.db.OutageLog), not once a second.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from appservices.commerce.campaigns.delivery import CampaignDelivery
from mercato.db import OutageLog
from mercato.logging import get_logger

if TYPE_CHECKING:
    from appservices.commerce.matrix import CommerceMatrix

log = get_logger(__name__)


class DeliveryWorker:
    def __init__(self, service: CommerceMatrix) -> None:
        self.campaigns = CampaignDelivery(service)
        self.wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        outage = OutageLog(log, "delivery")
        while True:
            self.wakeup.clear()
            try:
                await self.campaigns.run_pass()
                outage.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if not outage.failed(e):
                    log.exception("delivery.pass_failed")
            try:
                await asyncio.wait_for(self.wakeup.wait(), 1.0)
            except TimeoutError:
                pass
