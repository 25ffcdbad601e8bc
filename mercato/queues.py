"""Work kept in a table and done queue by queue: what every outbox's worker shares.

An outbox holds items in a table; items of one queue (a room, an order) go strictly one
after another, different queues side by side. The worker wakes when told or every
second, reads which queues have a due first item, and drains each in a task of its own,
at most `concurrency` at once, never two tasks for one queue. A pass that fails (the
database is restarting) is logged once per outage, not once a second.

What an item is, how it is tried and when it is tried again are the outbox's own
(`mercato.matrix.retrying.Backoff` for the arithmetic).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from mercato.db import OutageLog, database_unavailable
from mercato.logging import get_logger

log = get_logger(__name__)

PASS_INTERVAL = 1.0  # seconds between passes when nothing wakes the worker


class QueueWorker:
    """Runs `due_queues` each pass and `drain(queue)` for each queue it names."""

    def __init__(self, name: str, due_queues: Callable[[], Awaitable[Iterable[str]]],
                 drain: Callable[[str], Awaitable[None]], *, concurrency: int = 8,
                 after_pass: Callable[[], Awaitable[None]] | None = None) -> None:
        self.name = name
        self.due_queues = due_queues
        self.drain = drain
        self.after_pass = after_pass
        self._limit = asyncio.Semaphore(concurrency)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._queues: dict[str, asyncio.Task[None]] = {}

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._queues.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._queues.clear()

    async def run(self) -> None:
        outage = OutageLog(log, self.name)
        while True:
            self._wakeup.clear()
            try:
                await self.run_pass()
                outage.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if not outage.failed(e):
                    log.exception("queue.pass_failed", worker=self.name)
            try:
                await asyncio.wait_for(self._wakeup.wait(), PASS_INTERVAL)
            except TimeoutError:
                pass

    async def run_pass(self) -> int:
        """Start a task for each due queue not being drained; returns how many started."""
        for queue, task in list(self._queues.items()):
            if task.done():
                del self._queues[queue]
        started = 0
        for queue in await self.due_queues():
            if queue in self._queues:
                continue
            task = asyncio.create_task(self._drain(queue), name=f"{self.name}-queue")
            task.add_done_callback(lambda _: self._wakeup.set())
            self._queues[queue] = task
            started += 1
        if self.after_pass is not None:
            await self.after_pass()
        return started

    async def idle(self) -> None:
        """Wait for the queues being drained now (tests, shutting down gently)."""
        await asyncio.gather(*self._queues.values(), return_exceptions=True)

    async def _drain(self, queue: str) -> None:
        async with self._limit:
            try:
                await self.drain(queue)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # The next pass starts the queue again; the item's own try is on record.
                # A database outage is the pass's to report, once (OutageLog).
                if not database_unavailable(e):
                    log.exception("queue.drain_failed", worker=self.name, queue=queue)
