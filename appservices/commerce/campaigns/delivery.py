"""Campaign delivery: every campaign post is sent exactly once per (campaign, room).

Each (campaign, room) is an outbox row. Before a send, the row's attempt count is
written; the send uses the txnId `mercato.outbox.<row id>`, unique across the
appservice, and its content carries the row id under `org.mercato.post`. The
returned event ID is stored with the row.

Why both: Synapse deduplicates an appservice's txnIds only in memory and for
about half an hour, so after a Synapse restart (or a long appservice outage) a
resend could post twice. A row that was attempted but has no event ID is
therefore first looked for in the room's recent history (by its `org.mercato.txn`
marker, mercato/matrix/sending.py) and adopted if found; only otherwise is it sent again.

Edits of posted product cards that failed their first try are retried the same way
(catalog/card_delivery.py); worker.py runs both.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from mautrix.api import Method
from mautrix.types import RoomID

from appservices.commerce.campaigns import operations
from appservices.commerce.campaigns import rules as campaigns
from appservices.commerce.campaigns import storage as rows
from appservices.commerce.shops import storage as store
from mercato.db import transaction
from mercato.faults import fault_point
from mercato.logging import get_logger
from mercato.matrix.paths import matrix_path
from mercato.matrix.sending import send_once

if TYPE_CHECKING:
    from appservices.commerce.matrix import CommerceMatrix

log = get_logger(__name__)

MAX_ATTEMPTS = 10
CONCURRENT_ROOMS = 8
WAITING_TOO = 2**62  # a "now" after every retry time


def _now() -> int:
    return int(time.time() * 1000)


def outbox_txn_id(row_id: int) -> str:
    return f"mercato.outbox.{row_id}"


class CampaignDelivery:
    """Due campaigns become outbox rows; rows are sent in each room's order; a campaign is
    sent (or failed) when none of its rows is pending. The worker (worker.py) runs a pass."""

    def __init__(self, service: CommerceMatrix) -> None:
        self.service = service
        self.db = service.db

    async def run_pass(self) -> None:
        await self.start_due_campaigns()
        await self.send_pending()
        await self.finish_campaigns()

    async def start_due_campaigns(self) -> None:
        for campaign_id in await rows.due_campaigns(self.db, _now()):
            campaign = await rows.get_campaign(self.db, campaign_id)
            if campaign is None:
                continue
            rooms = campaign.channel_ids or [
                c.room_id for c in await store.channels_of(
                    self.db, store.MerchantSlug(campaign.merchant_slug))]
            async with transaction(self.db) as conn:
                await rows.enqueue(conn, campaign_id, rooms)
                await rows.set_campaign(conn, campaign_id, state="sending")
            log.info("campaign.sending", campaign=campaign_id, rooms=len(rooms))

    async def send_pending(self) -> None:
        # Rows waiting for a retry are read too: a room's later posts wait behind them.
        pending = await rows.pending_outbox(self.db, WAITING_TOO)
        if not pending:
            return
        limit = asyncio.Semaphore(CONCURRENT_ROOMS)
        by_room: dict[str, list[rows.OutboxRow]] = {}
        for row in pending:
            by_room.setdefault(row.room_id, []).append(row)

        async def room_worker(room_rows: list[rows.OutboxRow]) -> None:
            async with limit:
                for row in room_rows:  # one room's posts keep their order
                    if row.next_attempt_at > _now() or not await self.send_row(row):
                        break

        await asyncio.gather(*(room_worker(r) for r in by_room.values()))

    async def send_row(self, row: rows.OutboxRow) -> bool:
        """Send one row; False when it is still pending (the room's next rows wait)."""
        campaign = await rows.get_campaign(self.db, row.campaign_id)
        if campaign is None or campaign.state not in ("sending",):
            await rows.mark_retry(self.db, row.id, f"campaign is "
                                  f"{campaign.state if campaign else 'gone'}", _now(), True)
            return True
        merchant = await store.get_merchant(self.db, store.MerchantSlug(campaign.merchant_slug))
        if merchant is None or merchant.status != "approved":
            # A suspended shop posts nothing; the row waits for reinstatement.
            await rows.mark_retry(self.db, row.id, "shop is not active", _now() + 60_000, False)
            return False
        intent = self.service.intent_for(merchant.mxid)
        try:
            content = await operations.render_campaign(self.db, merchant, campaign)
            content[campaigns.POST_KEY]["outbox"] = row.id
            await rows.mark_attempt(self.db, row.id, row.attempts + 1)
            # One try here: a failed send is retried by the outbox, which (attempt
            # recorded first) then looks for the post in the room before sending again.
            event_id = await send_once(intent, RoomID(row.room_id), content,
                                       txn_id=outbox_txn_id(row.id), attempts=1,
                                       look_first=row.attempts > 0)
            fault_point("outbox.after_send")  # sent, but not yet recorded
            await rows.mark_sent(self.db, row.id, event_id, await self.reach(row.room_id))
            log.info("outbox.sent", row=row.id, campaign=row.campaign_id, room_id=row.room_id,
                     event_id=event_id)
            return True
        except Exception as e:
            attempts = row.attempts + 1
            give_up = attempts >= MAX_ATTEMPTS
            delay = min(300_000, 1000 * 2 ** attempts)
            await rows.mark_retry(self.db, row.id, f"{type(e).__name__}: {e}", _now() + delay,
                                  give_up)
            log.warning("outbox.send_failed", row=row.id, attempt=attempts, give_up=give_up,
                        error=str(e))
            return give_up

    async def reach(self, room_id: str) -> int:
        """Followers in the room when the post went out."""
        members: dict[str, Any] = (await self.service.bot.api.request(
            Method.GET, matrix_path("client", "v3", "rooms", room_id, "joined_members"),
        )).get("joined", {})
        return sum(1 for user in members if not self.service.is_own_user(user))

    async def finish_campaigns(self) -> None:
        for campaign_id in await rows.sending_campaigns(self.db):
            if await rows.posts_in_state(self.db, campaign_id, "pending") == 0:
                delivered = await rows.posts_in_state(self.db, campaign_id, "sent")
                state = "sent" if delivered else "failed"
                await rows.set_campaign(self.db, campaign_id, state=state, sent_at=_now())
                log.info("campaign.finished", campaign=campaign_id, state=state,
                         delivered=delivered)
