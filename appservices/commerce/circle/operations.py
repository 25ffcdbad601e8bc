"""What people do with their Circle: opt in and out, recommend, approve and remove friends;
and what the Circle does when a product changes.

Called by the API routes and the Matrix events (⭐ reactions); Matrix effects go through
`CircleRooms` (rooms.py), friends are asked of the contacts bridge (friends.py).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import unquote

from appservices.commerce import links
from appservices.commerce.campaigns import storage as campaign_rows
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog.products import Product
from appservices.commerce.circle import rules
from appservices.commerce.circle import storage as rows
from appservices.commerce.circle.rooms import CircleRooms
from appservices.commerce.errors import Conflict, InvalidInput, NotFound
from appservices.commerce.quotas import DAY_MS
from appservices.commerce.shops import storage as store
from mercato.db import Database, transaction
from mercato.logging import get_logger

log = get_logger(__name__)


class Friends(Protocol):
    async def friends_of(self, user_id: str) -> list[str]: ...


# -- the circle room and the Space ----------------------------------------------------------

async def ensure_room(db: Database, rooms: CircleRooms, user_id: str) -> str:
    """The user's circle room, made on first use."""
    await rows.ensure_circle(db, user_id)
    circle = await rows.get_circle(db, user_id)
    if circle is not None and circle.room_id:
        return circle.room_id
    room_id = await rooms.create_circle_room(user_id, await rooms.display_name(user_id))
    await rows.set_room(db, user_id, room_id)
    return room_id


async def sync_space(db: Database, rooms: CircleRooms, user_id: str) -> None:
    """The user's Space holds their own circle room, the channels they follow and their
    friends' circle rooms: add what is missing, take out what is no longer so."""
    circle = await rows.get_circle(db, user_id)
    if circle is None or not circle.opted_in or not circle.space_id:
        return
    wanted: dict[str, str] = {room: "channel" for room in await rows.followed_channels(db, user_id)}
    wanted.update({c.room_id: "circle" for c in await rows.circles_joined_by(db, user_id)
                   if c.room_id})
    if circle.room_id:
        wanted[circle.room_id] = "own"
    present = await rows.space_children(db, user_id)
    for room_id, kind in wanted.items():
        if room_id not in present:
            await rooms.set_space_child(circle.space_id, room_id, True)
            await rows.add_space_child(db, user_id, room_id, kind)
    for room_id in present.keys() - wanted.keys():
        await rooms.set_space_child(circle.space_id, room_id, False)
        await rows.remove_space_child(db, user_id, room_id)


# -- opting in and out ---------------------------------------------------------------------------

async def opt_in(db: Database, rooms: CircleRooms, friends: Friends,
                 user_id: str) -> dict[str, Any]:
    """`circle on`: the user's room and Space; friends who opted in too — found through the
    contacts bridge, or people the user has a direct chat with — are invited to each other's
    circle rooms."""
    room_id = await ensure_room(db, rooms, user_id)
    await rows.set_opted_in(db, user_id, True)
    circle = await rows.get_circle(db, user_id)
    if circle is not None and circle.space_id:
        await rooms.invite(circle.space_id, user_id)  # back after `circle off`
    else:
        await rows.set_space(db, user_id, await rooms.create_space(user_id))
    await rooms.invite(room_id, user_id)
    found = {friend: "contacts" for friend in await friends.friends_of(user_id)}
    for partner in await rooms.direct_partners(user_id):
        found.setdefault(partner, "direct")
    invited = []
    for friend in sorted(await rows.opted_in_among(db, list(found))):
        if await _invite_friend(db, rooms, user_id, friend, how=found[friend]):
            invited.append(friend)
        await _invite_friend(db, rooms, friend, user_id, how=found[friend])
    await sync_space(db, rooms, user_id)
    log.info("circle.opted_in", user_id=user_id, friends=len(invited))
    return await circle_view(db, user_id)


async def _invite_friend(db: Database, rooms: CircleRooms, owner: str, friend: str, *,
                         how: str) -> bool:
    """Invite `friend` to `owner`'s circle room, unless the owner removed or banned them, or
    they are in it already, or left it."""
    circle = await rows.get_circle(db, owner)
    if circle is None or not circle.room_id or not circle.opted_in:
        return False
    state = await rows.member_state(db, owner, friend)
    if state not in (None, "knocking"):
        return False
    if await rooms.membership(circle.room_id, friend) == "ban":
        await rows.set_member(db, owner, friend, "banned", how)
        return False
    await rooms.invite(circle.room_id, friend)
    await rows.set_member(db, owner, friend, "invited", how)
    return True


async def opt_out(db: Database, rooms: CircleRooms, user_id: str) -> dict[str, Any]:
    """`circle off`: the user leaves every circle and their Space, and their friends leave
    their room. Nothing is deleted: recommendations stay in the rooms' history."""
    circle = await rows.get_circle(db, user_id)
    if circle is None or not circle.opted_in:
        return await circle_view(db, user_id)
    await rows.set_opted_in(db, user_id, False)
    for friends_circle in await rows.circles_joined_by(db, user_id):
        if friends_circle.room_id:
            await rooms.kick(friends_circle.room_id, user_id, "Left the Circle")
            await rows.set_member(db, friends_circle.user_id, user_id, "left", "contacts")
    if circle.room_id:
        for friend in await rows.members(db, user_id, ("joined", "invited", "knocking")):
            await rooms.kick(circle.room_id, friend, "The Circle is closed")
            await rows.set_member(db, user_id, friend, "left", "contacts")
    if circle.space_id:
        await rooms.kick(circle.space_id, user_id, "Left the Circle")
    log.info("circle.opted_out", user_id=user_id)
    return await circle_view(db, user_id)


async def circle_view(db: Database, user_id: str) -> dict[str, Any]:
    circle = await rows.get_circle(db, user_id)
    if circle is None:
        return {"opted_in": False, "room_id": None, "space_id": None, "friends": [],
                "digest": False}
    return {"opted_in": circle.opted_in, "room_id": circle.room_id, "space_id": circle.space_id,
            "friends": await rows.members(db, user_id, ("joined",)),
            "invited": await rows.members(db, user_id, ("invited",)),
            "knocking": await rows.members(db, user_id, ("knocking",)),
            "digest": circle.digest_room_id is not None}


# -- friends the owner lets in or takes out -----------------------------------------------------

async def approve(db: Database, rooms: CircleRooms, owner: str, user_id: str) -> dict[str, Any]:
    """`circle approve <user>`: invite someone who knocked (or anyone the owner names)."""
    circle = await rows.get_circle(db, owner)
    if circle is None or not circle.room_id:
        raise NotFound("You have no Circle yet; type circle on first.")
    if await rooms.membership(circle.room_id, user_id) == "ban":
        raise Conflict(f"You banned {user_id} from your Circle; unban them in your client "
                       "first if you want them back.", errcode="MERCATO_CIRCLE_BANNED")
    await rooms.invite(circle.room_id, user_id)
    await rows.set_member(db, owner, user_id, "invited", "approved")
    log.info("circle.approved", owner=owner, user_id=user_id)
    return await circle_view(db, owner)


async def remove(db: Database, rooms: CircleRooms, owner: str, user_id: str) -> dict[str, Any]:
    """`circle remove <user>`: out of the owner's circle room, and it out of their Space."""
    circle = await rows.get_circle(db, owner)
    if circle is None or not circle.room_id:
        raise NotFound("You have no Circle yet; type circle on first.")
    await rooms.kick(circle.room_id, user_id, "Removed from the Circle")
    await rows.set_member(db, owner, user_id, "removed", "approved")
    await sync_space(db, rooms, user_id)
    log.info("circle.removed", owner=owner, user_id=user_id)
    return await circle_view(db, owner)


# -- recommending ---------------------------------------------------------------------------------

async def _check_limit(db: Database, user_id: str, per_day: int, now_ms: int) -> None:
    used, oldest = await rows.count_since(db, user_id, now_ms - DAY_MS)
    rules.check_daily_limit(per_day, used, oldest)


def _check_note(rooms: CircleRooms, merchant: store.Merchant, note: str) -> None:
    """The user's own line passes the link rules: Mercato's pages and the shop's verified
    site only, https, no shorteners or look-alikes."""
    hosts = links.policy_for(merchant, rooms.mercato_hosts).allowed_hosts
    links.check_links([note], links.LinkPolicy(allowed_hosts=hosts, verified=True))


async def recommend_product(db: Database, rooms: CircleRooms, user_id: str, slug: str,
                            sku: str, note: Any, *, txn_id: str, per_day: int,
                            now_ms: int) -> rows.Recommendation:
    """Post the product's card in the user's circle room, once per `txn_id`."""
    existing = await rows.by_txn(db, txn_id)
    if existing is not None:
        return existing
    merchant, product = await catalog.public_product(db, slug, sku)
    line = rules.validate_note(note)
    _check_note(rooms, merchant, line)
    await _check_limit(db, user_id, per_day, now_ms)
    room_id = await ensure_room(db, rooms, user_id)
    name = await rooms.display_name(user_id)
    async with transaction(db) as conn:
        rec = await rows.insert_recommendation(
            conn, txn_id=txn_id, owner_id=user_id, room_id=room_id, merchant_slug=slug,
            sku=product.sku, source_room_id=None, source_event_id=None, note=line, quote="",
            recommender_name=name, price=None, stock=None)
        await rooms.queue_recommendation(room_id, txn_id, conn)
    rooms.wake_messages()
    log.info("circle.recommended", user_id=user_id, shop=slug, sku=sku)
    return rec


async def recommend_post(db: Database, rooms: CircleRooms, user_id: str, room_id: str,
                         event_id: str, note: Any, *, txn_id: str, per_day: int,
                         now_ms: int) -> rows.Recommendation:
    """Quote a channel post in the user's circle room, with a link to it."""
    existing = await rows.by_txn(db, txn_id)
    if existing is not None:
        return existing
    post = await campaign_rows.post_of_event(db, event_id)
    campaign = await campaign_rows.get_campaign(db, post[0]) if post else None
    merchant = await store.get_merchant(db, store.MerchantSlug(campaign.merchant_slug)) \
        if campaign else None
    if post is None or merchant is None or merchant.status != "approved":
        raise NotFound("That is not a post of a shop's channel.")
    line = rules.validate_note(note)
    _check_note(rooms, merchant, line)
    await _check_limit(db, user_id, per_day, now_ms)
    quote = (await rooms.post_text(post[1], event_id))[:1000]
    circle_room = await ensure_room(db, rooms, user_id)
    name = await rooms.display_name(user_id)
    async with transaction(db) as conn:
        rec = await rows.insert_recommendation(
            conn, txn_id=txn_id, owner_id=user_id, room_id=circle_room,
            merchant_slug=merchant.slug, sku=None, source_room_id=post[1],
            source_event_id=event_id, note=line, quote=quote, recommender_name=name,
            price=None, stock=None)
        await rooms.queue_recommendation(circle_room, txn_id, conn)
    rooms.wake_messages()
    log.info("circle.recommended_post", user_id=user_id, shop=merchant.slug, event_id=event_id)
    return rec


def recommendation_view(rec: rows.Recommendation) -> dict[str, Any]:
    return {"id": rec.id, "room_id": rec.room_id, "event_id": rec.event_id,
            "shop": rec.merchant_slug, "sku": rec.sku, "note": rec.note,
            "post": rules.matrix_to(rec.source_room_id, rec.source_event_id)
            if rec.source_room_id and rec.source_event_id else None,
            "created_at": rec.created_at}


def parse_post_link(value: Any) -> tuple[str, str]:
    """(room ID, event ID) of a post named by its matrix.to link or as {room_id, event_id}."""
    if isinstance(value, str) and value.startswith("https://matrix.to/#/"):
        # The feed's own links escape the IDs (%21room/%24event); typed ones may not.
        parts = [unquote(part) for part in
                 value.removeprefix("https://matrix.to/#/").split("?", 1)[0].split("/")]
        if len(parts) == 2 and parts[0] and parts[1].startswith("$"):
            return parts[0], parts[1]
    raise InvalidInput("post", "give the post's link, like https://matrix.to/#/!room/$event")


# -- a product changed --------------------------------------------------------------------------

async def refresh(db: Database, rooms: CircleRooms, product: Product) -> int:
    """Queue an edit of every recommendation of this product that shows other facts."""
    stale = [r for r in await rows.of_product(db, product.merchant_slug, product.sku)
             if (r.price, r.stock) != (product.price, product.stock)]
    if not stale:
        return 0
    version = store.now_ms()
    async with transaction(db) as conn:
        for rec in stale:
            await rooms.queue_edit(rec, f"mercato.circle.edit.{rec.id}.{version}", conn)
    rooms.wake_messages()
    log.info("circle.recommendations_refreshed", shop=product.merchant_slug, sku=product.sku,
             queued=len(stale))
    return len(stale)


# -- the digest --------------------------------------------------------------------------------

async def set_digest(db: Database, user_id: str, room_id: str | None) -> None:
    """`digest on` (in the shop bot's DM `room_id`) or off (None)."""
    await rows.ensure_circle(db, user_id)
    await rows.set_digest(db, user_id, room_id)


async def digest_subscribers(db: Database) -> list[str]:
    return [c.user_id for c in await rows.digest_subscribers(db)]
