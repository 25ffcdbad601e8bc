"""What the Circle does with the Matrix events commerce is sent: ⭐ on a card, a channel post
or a friend's recommendation recommends it; memberships of circle rooms say who is in whose
circle (a join after an invite from the owner's own client counts as much as an approval);
follows and unfollows of channels keep the follower's Space up to date.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from mautrix.types import Membership, StateEvent

from appservices.commerce.campaigns import storage as campaign_rows
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.circle import operations, rules
from appservices.commerce.circle import storage as rows
from appservices.commerce.circle.rooms import CircleRooms
from appservices.commerce.config import CommerceConfig
from appservices.commerce.errors import CommerceError
from appservices.commerce.shops import storage as store
from mercato.db import Database
from mercato.logging import get_logger
from mercato.matrix.appservice import membership_of

log = get_logger(__name__)


class CircleService(Protocol):
    db: Database
    circle: CircleRooms
    config: Any


def _service(matrix: object) -> CircleService:
    return cast(CircleService, matrix)


async def on_reaction(matrix: object, raw: dict[str, Any], target_event_id: str, key: str,
                      sender: str, now_ms: int) -> bool:
    """⭐ recommends what it is on; True when the reaction was the Circle's."""
    if not rules.is_recommend_reaction(key):
        return False
    service = _service(matrix)
    db, rooms = service.db, service.circle
    per_day = CommerceConfig.of(service.config).circle.recommendations_per_day
    txn_id = f"mercato.circle.rec.{raw['event_id']}"
    try:
        card = await product_rows.card_of_event(db, target_event_id)
        recommended = await rows.by_event(db, target_event_id)  # passing a friend's find on
        if recommended is not None and recommended.sku is not None:
            card = (recommended.merchant_slug, recommended.sku)
        if card is not None:
            await operations.recommend_product(db, rooms, sender, card[0], card[1], "",
                                               txn_id=txn_id, per_day=per_day, now_ms=now_ms)
            return True
        if recommended is not None and recommended.source_event_id:
            target_event_id = recommended.source_event_id
        if await campaign_rows.post_of_event(db, target_event_id) is not None:
            await operations.recommend_post(db, rooms, sender, raw["room_id"], target_event_id,
                                            "", txn_id=txn_id, per_day=per_day, now_ms=now_ms)
            return True
    except CommerceError as e:
        # A reaction has no answer to carry the refusal: the bot and the API say it.
        log.info("circle.recommendation_refused", user_id=sender, error=e.message)
        return True
    return False


async def on_member(matrix: object, event: StateEvent) -> None:
    service = _service(matrix)
    db, rooms = service.db, service.circle
    user_id = str(event.state_key)
    if user_id == rooms.bot_mxid:
        return
    circle = await rows.circle_of_room(db, str(event.room_id))
    if circle is None:
        if await store.get_channel(db, event.room_id) is not None:
            await operations.sync_space(db, rooms, user_id)  # followed or unfollowed
        return
    if user_id == circle.user_id:
        return
    membership = membership_of(event)
    before = await rows.member_state(db, circle.user_id, user_id)
    states = {Membership.JOIN: "joined", Membership.INVITE: "invited",
              Membership.KNOCK: "knocking", Membership.BAN: "banned"}
    state = states.get(membership) if membership is not None else None
    if state is None:  # left: on their own, or taken out by the owner or the bot
        state = "left" if str(event.sender) == user_id else "removed"
        if before in ("left", "removed"):
            return
    await rows.set_member(db, circle.user_id, user_id, state,
                          "client" if before is None else "approved")
    log.info("circle.member", owner=circle.user_id, user_id=user_id, state=state)
    if state in ("joined", "left", "removed", "banned"):
        await operations.sync_space(db, rooms, user_id)
