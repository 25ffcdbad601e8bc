"""The webhook outbox: each recorded delivery POSTed to its shop's endpoint until it arrives.

Deliveries are rows first (`events.record_event`, in the transaction of what caused
them), so neither a crash nor the receiver being down loses one. The worker is the
core's (`mercato.queues.QueueWorker`): one endpoint's deliveries about one subject (an
order) go strictly in order, the next waiting until the one before has arrived or been
given up; other subjects go side by side. Each try is on record before it starts. A 2xx
answer is delivered; any other answer, a timeout or a refused connection is a failed try,
tried again with the core's backoff (`rules.BACKOFF`: 10 s doubling to hourly) until a
failure comes a day after its first try, which parks it (`failed`). The shop sees
all of it in its delivery log and may resend an event, which keeps its ID.

Each try is signed when it is sent (`signing.py`) with the endpoint's secret of that
moment, so a rotated secret signs the retries too. The clock is a parameter, so the day
can pass in a test without waiting for it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from prometheus_client import Counter

from appservices.commerce.webhooks import rules, signing, storage
from mercato.db import Database, database_unavailable
from mercato.logging import get_logger
from mercato.matrix.retrying import Backoff, now_ms
from mercato.queues import QueueWorker

log = get_logger(__name__)

DELIVERIES = Counter("mercato_webhook_deliveries_total",
                     "Webhook deliveries: delivered, retried after a failed try, parked after"
                     " a day of tries, or cancelled with their endpoint", ["outcome"])
QUEUES_READ = 500  # queues looked at per pass
RETENTION_MS = 30 * 24 * 3600 * 1000  # how long the delivery log keeps a settled delivery
USER_AGENT = "Mercato-Webhooks/1"
ERROR_TEXT_CHARS = 200  # how much of a refusing receiver's answer the log keeps


@dataclass(frozen=True)
class Outcome:
    """What one POST came to: an HTTP status (None: no answer) and, unless 2xx, why."""

    status: int | None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def failure_text(error: Exception) -> str:
    """Why a POST got no answer, as the shop's delivery log says it."""
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return (f"the certificate of {error.host} is not trusted: "
                f"{error.certificate_error}")[:ERROR_TEXT_CHARS * 2]
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = error.os_error.strerror or str(error.os_error)
        return f"could not connect to {error.host}:{error.port}: {reason}"[:ERROR_TEXT_CHARS * 2]
    return f"{type(error).__name__}: {error}"[:ERROR_TEXT_CHARS * 2]


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """The system's trusted certificates, and the operator's extra CA file if set."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return context


class WebhookOutbox:
    def __init__(self, db: Database, *, ca_file: str = "",
                 clock: Callable[[], int] = now_ms, backoff: Backoff = rules.BACKOFF,
                 timeout: float = rules.TIMEOUT_SECONDS) -> None:
        self.db = db
        self.clock = clock
        self.backoff = backoff
        self.timeout = timeout
        self.tls = tls_context(ca_file)
        self.worker = QueueWorker("webhooks", self._due_queues, self._drain,
                                  after_pass=self._prune)
        self._session: aiohttp.ClientSession | None = None
        self._last_prune = 0

    def start(self) -> None:
        self.worker.start()

    def wake(self) -> None:
        self.worker.wake()

    async def stop(self) -> None:
        await self.worker.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- the worker's parts -------------------------------------------------------------

    async def _due_queues(self) -> list[str]:
        return await storage.due_queues(self.db, self.clock(), QUEUES_READ)

    async def _drain(self, queue: str) -> None:
        endpoint_id, _, subject = queue.partition(":")
        while True:
            delivery = await storage.first_pending(self.db, int(endpoint_id), subject)
            if delivery is None or delivery.next_attempt_at > self.clock():
                return
            if not await self.try_delivery(delivery):
                return

    async def _prune(self) -> None:
        if self.clock() - self._last_prune < 3600_000:
            return
        self._last_prune = self.clock()
        await storage.prune(self.db, self.clock() - RETENTION_MS)

    # -- one try ------------------------------------------------------------------------

    async def try_delivery(self, delivery: storage.Delivery) -> bool:
        """One POST; True when the subject's next delivery may follow (delivered, parked
        or cancelled), False when this one waits for its retry."""
        endpoint = await storage.endpoint_by_id(self.db, delivery.endpoint_id)
        if endpoint is None:
            cancelled = await storage.cancel_pending(self.db, delivery.endpoint_id,
                                                     "the shop removed its webhook")
            DELIVERIES.labels("cancelled").inc(cancelled)
            return True
        attempts = delivery.attempts + 1
        # The try is on record before it starts: one cut short by a crash counts too.
        await storage.count_attempt(self.db, delivery.id, attempts, self.clock())
        outcome = await self.post(endpoint, delivery)
        if outcome.delivered:
            await storage.mark_delivered(self.db, delivery.id, outcome.status or 0, self.clock())
            DELIVERIES.labels("delivered").inc()
            log.info("webhook.delivered", shop=delivery.merchant_slug,
                     event_id=delivery.event_id, type=delivery.event_type,
                     subject=delivery.subject, attempts=attempts, status=outcome.status)
            return True
        return await self._failed(delivery, attempts, outcome)

    async def _failed(self, delivery: storage.Delivery, attempts: int,
                      outcome: Outcome) -> bool:
        now = self.clock()
        # Its day began at its first try (this one, if first_try_at is not read yet).
        parked = self.backoff.parks(attempts, now - (delivery.first_try_at or now))
        await storage.mark_failed(self.db, delivery.id, status=outcome.status,
                                  error=outcome.error,
                                  next_attempt_at=self.backoff.next_try_at(attempts, now),
                                  parked=parked)
        DELIVERIES.labels("failed" if parked else "retry").inc()
        log_line = log.error if parked else log.warning
        log_line("webhook.parked" if parked else "webhook.try_failed",
                 shop=delivery.merchant_slug, event_id=delivery.event_id,
                 subject=delivery.subject, attempt=attempts, status=outcome.status,
                 error=outcome.error)
        return parked

    async def post(self, endpoint: storage.Endpoint, delivery: storage.Delivery) -> Outcome:
        """POST the delivery's body, signed now; what came of it (never raises for the
        receiver's sake: a database failure does, and the try is made again)."""
        body = delivery.body.encode()
        timestamp = self.clock() // 1000
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            signing.EVENT_ID_HEADER: delivery.event_id,
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.signature_header(endpoint.secret, timestamp,
                                                                body),
        }
        try:
            async with self.session.post(endpoint.url, data=body, headers=headers,
                                         allow_redirects=False, ssl=self.tls) as answer:
                if 200 <= answer.status < 300:
                    return Outcome(answer.status)
                text = (await answer.text(errors="replace"))[:ERROR_TEXT_CHARS]
                return Outcome(answer.status, f"HTTP {answer.status}: {text}".strip())
        except TimeoutError:
            return Outcome(None, f"no answer within {self.timeout:g} s")
        except Exception as e:
            if database_unavailable(e):
                raise
            return Outcome(None, failure_text(e))

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session
