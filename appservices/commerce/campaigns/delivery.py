"""Campaign delivery: every campaign post is sent exactly once per (campaign, room), through
the core outbox (mercato/matrix/outbox.py).

When a campaign falls due, each of its rooms gets a row in the campaign's delivery table
(`outbox`: what GET /campaigns/{id}, the stats, retraction and reactions read) and, in the
same transaction, a message in the core outbox with the txnId `mercato.outbox.<row id>`
and no content of its own: the post is rendered when it is sent (the build hook), from
the campaign, shop and coupon of then, with the row id under `org.mercato.post`. A
suspended shop's posts wait (held, tried again every 60 s, not counted as tries) until
it is reinstated; a post of a campaign no longer sending is dropped. The other hooks keep
the row up to date: each failed try's count and error, the event ID and reach once sent,
`failed` once parked. The outbox sends in each room's order, looks for a retried post in
the room first and adopts it, so a post whose answer a Synapse restart swallowed is not
sent twice. A campaign is sent (or failed) when none of its rows is pending.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mautrix.api import Method

from appservices.commerce import messages as message_kinds
from appservices.commerce.campaigns import operations
from appservices.commerce.campaigns import rules as campaigns
from appservices.commerce.campaigns import storage as rows
from appservices.commerce.shops import storage as store
from mercato.db import transaction
from mercato.faults import fault_point
from mercato.logging import get_logger
from mercato.matrix.outbox import Message, Outbox, Outgoing
from mercato.matrix.outbox_hooks import Drop, Failure, Hold
from mercato.matrix.paths import matrix_path

if TYPE_CHECKING:
    from appservices.commerce.matrix import CommerceMatrix

log = get_logger(__name__)


def _now() -> int:
    return int(time.time() * 1000)


def outbox_txn_id(row_id: int) -> str:
    return f"mercato.outbox.{row_id}"


class CampaignDelivery:
    """Due campaigns become rows and outbox messages; a campaign is sent (or failed) when
    none of its rows is pending. The worker (worker.py) runs a pass."""

    def __init__(self, service: CommerceMatrix) -> None:
        self.service = service
        self.db = service.db

    def register(self, outbox: Outbox) -> None:
        outbox.on_build(message_kinds.CAMPAIGN_POST, self.build_post)
        outbox.on_sent(message_kinds.CAMPAIGN_POST, self.post_sent)
        outbox.on_failed(message_kinds.CAMPAIGN_POST, self.post_failed)

    async def run_pass(self) -> None:
        await self.start_due_campaigns()
        await self.finish_campaigns()

    async def start_due_campaigns(self) -> None:
        for campaign_id in await rows.due_campaigns(self.db, _now()):
            campaign = await rows.get_campaign(self.db, campaign_id)
            if campaign is None:
                continue
            slug = store.MerchantSlug(campaign.merchant_slug)
            merchant = await store.get_merchant(self.db, slug)
            if merchant is None:
                continue
            rooms = campaign.channel_ids or [
                c.room_id for c in await store.channels_of(self.db, slug)]
            async with transaction(self.db) as conn:
                for row_id, room_id in await rows.enqueue(conn, campaign_id, rooms):
                    await self.service.messages.record(Message(
                        txn_id=outbox_txn_id(row_id), room_id=room_id, sender=merchant.mxid,
                        content={}, kind=message_kinds.CAMPAIGN_POST, subject=str(row_id)),
                        conn)
                await rows.set_campaign(conn, campaign_id, state="sending")
            self.service.messages.wake()
            log.info("campaign.sending", campaign=campaign_id, rooms=len(rooms))

    async def build_post(self, message: Outgoing) -> dict[str, Any] | Hold | Drop:
        """The post as its campaign and shop are now: or wait (suspended shop), or drop."""
        row_id = int(message.subject or 0)
        campaign_id = await rows.campaign_of_row(self.db, row_id)
        campaign = await rows.get_campaign(self.db, campaign_id) if campaign_id else None
        if campaign is None or campaign.state != "sending":
            why = f"campaign is {campaign.state if campaign else 'gone'}"
            await rows.mark_retry(self.db, row_id, why, _now(), True)
            return Drop(why)
        merchant = await store.get_merchant(self.db, store.MerchantSlug(campaign.merchant_slug))
        if merchant is None or merchant.status != "approved":
            # A suspended shop posts nothing; the row waits for reinstatement.
            await rows.mark_retry(self.db, row_id, "shop is not active", _now() + 60_000,
                                  False)
            return Hold("shop is not active")
        content = await operations.render_campaign(self.db, merchant, campaign)
        content[campaigns.POST_KEY]["outbox"] = row_id
        await rows.mark_attempt(self.db, row_id, message.attempts + 1)
        return content

    async def post_sent(self, message: Outgoing, event_id: str) -> None:
        fault_point("outbox.after_send")  # sent, but not yet recorded
        row_id = int(message.subject or 0)
        await rows.mark_sent(self.db, row_id, event_id, await self.reach(message.room_id))
        log.info("outbox.sent", row=row_id, room_id=message.room_id, event_id=event_id)
        await self.finish_campaign_of(row_id)

    async def post_failed(self, message: Outgoing, failure: Failure) -> None:
        row_id = int(message.subject or 0)
        await rows.mark_attempt(self.db, row_id, failure.attempts)
        await rows.mark_retry(self.db, row_id, failure.error, _now(), failure.parked)
        if failure.parked:
            await self.finish_campaign_of(row_id)

    async def reach(self, room_id: str) -> int:
        """Followers in the room when the post went out."""
        members: dict[str, Any] = (await self.service.bot.api.request(
            Method.GET, matrix_path("client", "v3", "rooms", room_id, "joined_members"),
        )).get("joined", {})
        return sum(1 for user in members if not self.service.is_own_user(user))

    async def finish_campaigns(self) -> None:
        for campaign_id in await rows.sending_campaigns(self.db):
            await self.finish_campaign(campaign_id)

    async def finish_campaign_of(self, row_id: int) -> None:
        """At once when its last post is done (the worker's pass would within a second)."""
        campaign_id = await rows.campaign_of_row(self.db, row_id)
        campaign = await rows.get_campaign(self.db, campaign_id) if campaign_id else None
        if campaign is not None and campaign.state == "sending":
            await self.finish_campaign(campaign.id)

    async def finish_campaign(self, campaign_id: int) -> None:
        """Sent once none of its posts is pending, failed if none was delivered."""
        if await rows.posts_in_state(self.db, campaign_id, "pending") == 0:
            delivered = await rows.posts_in_state(self.db, campaign_id, "sent")
            state = "sent" if delivered else "failed"
            if await rows.finish_sending(self.db, campaign_id, state, _now()):
                log.info("campaign.finished", campaign=campaign_id, state=state,
                         delivered=delivered)
