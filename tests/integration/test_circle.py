"""The Circle against a real Synapse, as buyers' clients see it: friends the contacts bridge
found are invited to each other's circle rooms, a ⭐ on a card reaches a friend once and is
edited when the price changes, nobody else gets in without the owner's approval, friends
cannot post there, the Space follows the channels followed, and the digest comes at most
once a day."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from appservices.commerce.circle import rules
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient, MatrixError
from tests.integration.commerce_api import CommerceApi
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.integration.test_contacts_bridge import (
    become_findable,
    open_bridge_dm,
    send_file,
    unique_number,
    vcard,
)
from tests.verification_sinks import MailSink, SmsGateway

DAY_MS = 24 * 3600 * 1000


async def befriend(network: RunningNetwork, sinks: tuple[SmsGateway, MailSink],
                   importer: MatrixClient, found: MatrixClient) -> None:
    """`found` becomes findable by phone; `importer`'s address book holds the number."""
    e164, raw = unique_number("4")
    found_dm = await open_bridge_dm(found, network)
    answer = await become_findable(found, network, found_dm, sinks, f"findable phone {raw}",
                                   e164)
    assert "findable" in answer["content"]["body"].lower(), answer["content"]["body"]
    importer_dm = await open_bridge_dm(importer, network)
    summary = await send_file(importer, network, importer_dm,
                              vcard([("Friend", raw, None)]), "friends.vcf", "text/vcard")
    assert found.user_id in summary["content"]["body"], summary["content"]["body"]


async def invited_rooms(client: MatrixClient, want: int, timeout: float = 60) -> dict[str, list]:
    found: dict[str, list] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync = await client.sync(timeout_ms=1000)
        for room_id, room in sync.get("rooms", {}).get("invite", {}).items():
            found[room_id] = room.get("invite_state", {}).get("events", [])
        if len(found) >= want:
            return found
    raise AssertionError(f"{len(found)} invitations after {timeout} s, wanted {want}")


def room_name(stripped: list[dict[str, Any]]) -> str:
    return next((e["content"].get("name", "") for e in stripped if e["type"] == "m.room.name"),
                "")


async def space_children(client: MatrixClient, space_id: str) -> set[str]:
    state = await client.full_state(space_id)
    return {e["state_key"] for e in state
            if e["type"] == "m.space.child" and e["content"].get("via")}


async def until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.3)


async def test_friends_see_a_recommendation_once_edited_and_only_they_get_in(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    commerce = CommerceApi(network, http)
    merchant = await new_user(network, http, "merchant")
    slug, key = await open_shop(api, merchant.user_id)
    status, _ = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "mug", "title": "Stoneware mug", "price": "24.00", "currency": "EUR"})
    assert status == 201
    ola = await new_user(network, http, "ola")
    kari = await new_user(network, http, "kari")
    await befriend(network, code_sinks, ola, kari)

    # Both opt in: each is invited to the other's circle room (and their own, and a Space).
    ola_circle = await commerce.post("/me/circle", commerce.acting_as(ola.user_id))
    assert ola_circle.status == 200, ola_circle
    kari_circle = await commerce.post("/me/circle", commerce.acting_as(kari.user_id))
    assert kari_circle.status == 200 and kari_circle.body["opted_in"], kari_circle
    ola_room, kari_room = ola_circle.body["room_id"], kari_circle.body["room_id"]
    kari_invites = await invited_rooms(kari, 3)
    assert ola_room in kari_invites and kari_room in kari_invites
    assert room_name(kari_invites[ola_room]).endswith("'s Circle")
    for room_id in (ola_room, kari_room, kari_circle.body["space_id"]):
        await kari.join(room_id)
    for room_id in (ola_room, ola_circle.body["space_id"]):
        await ola.join(room_id)
    join_rule = await ola.state(ola_room, "m.room.join_rules")
    assert join_rule["join_rule"] == "knock"

    # Ola follows the shop's channel and stars a card there: one message in her circle room.
    channel = await ola.join(f"#shop_{slug}:localhost")
    status, shared = await api.call("POST", f"/shops/{slug}/products/mug/share", key,
                                    {"room_id": channel})
    assert status == 200, shared
    await ola.send(channel, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": shared["event_id"], "key": "⭐"}},
        "m.reaction")
    recommendation = await kari.wait_for_message(
        ola_room, lambda e: e["type"] == "m.room.message"
        and e["content"].get(rules.BY_KEY) == ola.user_id)
    assert recommendation["sender"] == f"@{network.config.commerce.bot_localpart}:localhost"
    assert " recommends Stoneware mug — 24.00 EUR" in recommendation["content"]["body"]
    assert recommendation["content"]["org.mercato.product"]["price"] == "24.00"
    # A price change edits the recommendation in place.
    status, _ = await api.call("PATCH", f"/shops/{slug}/products/mug", key, {"price": "19.00"})
    assert status == 200
    edit = await kari.wait_for_message(
        ola_room, lambda e: e["content"].get("m.relates_to", {}).get("event_id")
        == recommendation["event_id"])
    assert edit["content"]["m.new_content"]["org.mercato.product"]["price"] == "19.00"
    assert edit["content"]["m.new_content"][rules.BY_KEY] == ola.user_id
    timeline = [e for e in await kari.messages(ola_room) if e["type"] == "m.room.message"
                and rules.BY_KEY in e["content"] and "m.relates_to" not in e["content"]]
    assert len(timeline) == 1  # one send, however many friends

    # A friend cannot post in another's circle room; reacting is fine.
    try:
        await kari.send_text(ola_room, "buy my stuff")
        raise AssertionError("a friend posted in someone else's circle room")
    except MatrixError as refused:
        assert refused.status == 403
    await kari.send(ola_room, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": recommendation["event_id"], "key": "👍"}},
        "m.reaction")

    # The feed, as the web page will read it.
    feed = await commerce.get("/me/circle/feed", commerce.acting_as(kari.user_id))
    assert feed.status == 200, feed
    item = feed.body["items"][0]
    assert item["recommended_by"] == ola.user_id and item["price"] == "19.00"
    assert item["shop"]["slug"] == slug and item["links"]["open"].startswith("https://matrix.to/")

    # The shop's staff and strangers cannot walk in: they may knock, and wait.
    stranger = await new_user(network, http, "stranger")
    for outsider in (merchant, stranger):
        try:
            await outsider.join(ola_room)
            raise AssertionError(f"{outsider.user_id} joined a circle room uninvited")
        except MatrixError as refused:
            assert refused.status == 403
    await stranger.request("POST", f"/_matrix/client/v3/knock/{quote(ola_room)}",
                           {"reason": "Kari sent me"})
    approved = await commerce.post("/me/circle/friends", commerce.acting_as(ola.user_id),
                                   {"user_id": stranger.user_id})
    assert approved.status == 200, approved
    await stranger.join(ola_room)
    await until(lambda: _member(commerce, ola.user_id, stranger.user_id))

    # The shop sees it in its stats.
    status, stats = await api.call("GET", f"/shops/{slug}/stats", key)
    assert status == 200 and stats["circle"]["products_recommended"] == 1, stats

    # Ola's Space holds the channel she follows; unfollowing takes it out.
    ola_space = ola_circle.body["space_id"]
    await until(lambda: _has_child(ola, ola_space, channel))
    await ola.leave(channel)
    await until(lambda: _has_child(ola, ola_space, channel, present=False))

    # Removing a friend takes them out of the room.
    removed = await commerce.delete(f"/me/circle/friends/{quote(stranger.user_id)}",
                                    commerce.acting_as(ola.user_id))
    assert removed.status == 200
    member = await ola.state(ola_room, "m.room.member", stranger.user_id)
    assert member["membership"] == "leave"


async def _member(commerce: CommerceApi, owner: str, user_id: str) -> bool:
    view = await commerce.get("/me/circle", commerce.acting_as(owner))
    return user_id in view.body["friends"]


async def _has_child(client: MatrixClient, space_id: str, room_id: str, *,
                     present: bool = True) -> bool:
    return (room_id in await space_children(client, space_id)) == present


async def test_the_limit_and_the_digest_at_most_once_a_day(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    commerce = CommerceApi(network, http)
    merchant = await new_user(network, http, "merchant")
    slug, key = await open_shop(api, merchant.user_id)
    status, _ = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "lamp", "title": "Lamp", "price": "40.00", "currency": "EUR"})
    assert status == 201
    ola = await new_user(network, http, "ola")
    kari = await new_user(network, http, "kari")
    await befriend(network, code_sinks, kari, ola)
    assert (await commerce.post("/me/circle", commerce.acting_as(ola.user_id))).status == 200
    kari_view = await commerce.post("/me/circle", commerce.acting_as(kari.user_id))
    kari_room = kari_view.body["room_id"]
    invites = await invited_rooms(ola, 2)
    assert kari_room in invites
    await ola.join(kari_room)
    await until(lambda: _member(commerce, kari.user_id, ola.user_id))

    # Ola's digest goes to her DM with the shop bot (any room she names, here one of hers).
    dm = await ola.create_dm(kari.user_id)
    digest = await commerce.call("PUT", "/me/circle/digest", commerce.acting_as(ola.user_id),
                                 json={"enabled": True, "room_id": dm})
    assert digest.status == 200 and digest.body["digest"]
    now = int(time.time() * 1000)
    nothing = await commerce.post(f"/me/circle/digest/next?at={now}",
                                  commerce.acting_as(ola.user_id))
    assert nothing.body == {"due": False}  # nothing new yet

    # Kari recommends with a line of her own; links elsewhere are refused.
    refused = await commerce.post("/me/circle/recommendations", commerce.acting_as(kari.user_id),
                                  {"shop": slug, "sku": "lamp", "note": "see bit.ly/x"})
    assert refused.status == 422 and "link shortener" in refused.error, refused
    made = await commerce.post("/me/circle/recommendations", commerce.acting_as(kari.user_id),
                               {"shop": slug, "sku": "lamp", "note": "Warm light",
                                "request_id": "lamp-1"})
    assert made.status == 201, made
    again = await commerce.post("/me/circle/recommendations", commerce.acting_as(kari.user_id),
                                {"shop": slug, "sku": "lamp", "note": "Warm light",
                                 "request_id": "lamp-1"})
    assert again.body["id"] == made.body["id"]
    await ola.wait_for_message(kari_room, lambda e: e["content"].get(rules.NOTE_KEY)
                               == "Warm light")

    later = now + 60_000
    first = await commerce.post(f"/me/circle/digest/next?at={later}",
                                commerce.acting_as(ola.user_id))
    assert first.body["due"] and first.body["room_id"] == dm
    assert "recommends Lamp — 40.00 EUR" in first.body["text"], first.body
    same_day = await commerce.post(f"/me/circle/digest/next?at={later + 3600_000}",
                                   commerce.acting_as(ola.user_id))
    assert same_day.body == {"due": False}
    next_day = await commerce.post(f"/me/circle/digest/next?at={later + DAY_MS}",
                                   commerce.acting_as(ola.user_id))
    assert next_day.body == {"due": False}  # a day later, but nothing new

    # The daily limit (20 by default) refuses with when it frees up.
    for n in range(19):
        made = await commerce.post("/me/circle/recommendations",
                                   commerce.acting_as(kari.user_id),
                                   {"shop": slug, "sku": "lamp", "request_id": f"n{n}"})
        assert made.status == 201, made
    over = await commerce.post("/me/circle/recommendations", commerce.acting_as(kari.user_id),
                               {"shop": slug, "sku": "lamp"})
    assert over.status == 429 and over.errcode == "MERCATO_CIRCLE_LIMIT"
    assert "You can recommend again after" in over.error


async def direct_chat(owner: MatrixClient, partner: MatrixClient) -> str:
    """A direct chat as clients make one: is_direct, the partner joins, and both clients
    record it in their `m.direct` account data."""
    room_id = await owner.create_dm(partner.user_id)
    await partner.join(room_id)
    for me, other in ((owner, partner), (partner, owner)):
        await mark_direct(me, other.user_id, room_id)
    return room_id


async def mark_direct(client: MatrixClient, partner: str, room_id: str) -> None:
    path = f"/_matrix/client/v3/user/{quote(client.user_id)}/account_data/m.direct"
    try:
        direct = await client.request("GET", path)
    except MatrixError:
        direct = {}
    direct.setdefault(partner, []).append(room_id)
    await client.request("PUT", path, direct)


async def test_people_with_a_direct_chat_are_friends_and_nobody_else(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    """`circle on` invites the opted-in people the user has a direct chat with (as their
    client lists it), not someone they ignore, not a partner who left or never joined, not
    someone they merely share a room with; only commerce may ask the homeserver who they
    are."""
    commerce = CommerceApi(network, http)
    ola, kari, ivar, per, lise = [await new_user(network, http, name)
                                  for name in ("ola", "kari", "ivar", "per", "lise")]
    await direct_chat(ola, kari)
    await direct_chat(ola, ivar)
    await ola.request("PUT", f"/_matrix/client/v3/user/{quote(ola.user_id)}/account_data/"
                      "m.ignored_user_list", {"ignored_users": {ivar.user_id: {}}})
    left = await direct_chat(ola, per)
    await per.leave(left)
    never = await ola.create_dm(lise.user_id)  # invited, never joined
    await mark_direct(ola, lise.user_id, never)
    group = await ola.request("POST", "/_matrix/client/v3/createRoom",
                              {"preset": "private_chat", "invite": [lise.user_id]})
    await lise.join(group["room_id"])

    for friend in (kari, ivar, per, lise):
        answer = await commerce.post("/me/circle", commerce.acting_as(friend.user_id))
        assert answer.status == 200, answer
    ola_circle = await commerce.post("/me/circle", commerce.acting_as(ola.user_id))
    assert ola_circle.status == 200, ola_circle
    assert ola_circle.body["invited"] == [kari.user_id]
    kari_circle = await commerce.get("/me/circle", commerce.acting_as(kari.user_id))
    kari_invites = await invited_rooms(kari, 3)
    assert ola_circle.body["room_id"] in kari_invites  # both ways
    assert ola.user_id in kari_circle.body["invited"]
    for stranger in (ivar, per, lise):
        state = await commerce.get("/me/circle", commerce.acting_as(stranger.user_id))
        assert ola.user_id not in state.body["invited"] + state.body["friends"]

    # The homeserver tells commerce only: a user asking about another is refused.
    try:
        await kari.request("GET", "/_synapse/client/mercato/direct_partners",
                           params={"user": ola.user_id})
        raise AssertionError("a user read another's direct chats")
    except MatrixError as e:
        assert e.status == 403
