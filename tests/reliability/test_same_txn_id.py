"""Two shops post into the same room at the same moment: both posts appear.

Synapse deduplicates an appservice's sends by (request path, appservice ID): the
`user_id` an appservice acts as is not part of the key. Two shop users of the one
commerce appservice that sent with the same client transaction ID into the same
room would get one event between them, and one shop's post would silently be lost.
The first test shows that hazard on the pinned Synapse; the second shows that
Mercato never walks into it: its txnIds are derived from what is unique across the
appservice (the outbox row, or the shop's slug with the SKU and the time), so two
shops sharing the same product card into one room at the same moment both appear.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from urllib.parse import quote

from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.reliability.harness import Harness, timeline, until

ROUNDS = 5


async def _room_with_two_shops(harness: Harness, http) -> tuple[Api, MatrixClient, str,
                                                                list[tuple[str, str]]]:
    """A buyer's group room that two shops have joined (they accept invites)."""
    harness.start_synapse()
    harness.start_commerce()
    api = Api(harness, http)
    owner = await new_user(harness, http, "owner")
    buyer = await new_user(harness, http, "buyer")
    shops = [await open_shop(api, owner.user_id) for _ in range(2)]
    shop_ids = [f"@shop_{slug}:localhost" for slug, _ in shops]
    room = await buyer.request("POST", "/_matrix/client/v3/createRoom", {
        "preset": "private_chat", "invite": shop_ids, "name": "Gift ideas"})
    room_id = room["room_id"]

    async def both_joined() -> bool:
        members = await buyer.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members")
        return set(shop_ids) <= set(members["joined"])

    await until(both_joined, 30, "both shops in the buyer's room")
    return api, buyer, room_id, shops


async def _txn_ids(harness: Harness, http, room_id: str, slugs: list[str]) -> dict[str, str]:
    """Event ID → the client txnId each shop sent its cards with."""
    found = {}
    for slug in slugs:
        async with http.get(
                f"{harness.hs_url}/_matrix/client/v3/rooms/{quote(room_id)}/messages",
                params={"user_id": f"@shop_{slug}:localhost", "dir": "b", "limit": "100"},
                headers={"Authorization": f"Bearer {harness.config.commerce.as_token}"}) as resp:
            assert resp.status == 200
            for event in (await resp.json())["chunk"]:
                txn_id = event.get("unsigned", {}).get("transaction_id")
                if txn_id and "org.mercato.product" in event.get("content", {}):
                    found[event["event_id"]] = txn_id
    return found


async def test_synapse_merges_two_users_sends_with_one_txn_id(harness: Harness, http) -> None:
    """The hazard: same appservice, same room, same txnId, two users → one event."""
    _, buyer, room_id, shops = await _room_with_two_shops(harness, http)
    txn_id = f"same-{uuid.uuid4().hex}"
    token = harness.config.commerce.as_token

    async def send_as(slug: str) -> str:
        url = (f"{harness.hs_url}/_matrix/client/v3/rooms/{quote(room_id)}/send/"
               f"m.room.message/{txn_id}")
        async with http.put(url, params={"user_id": f"@shop_{slug}:localhost"},
                            headers={"Authorization": f"Bearer {token}"},
                            json={"msgtype": "m.text", "body": f"from {slug}"}) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["event_id"]

    first, second = await asyncio.gather(*(send_as(slug) for slug, _ in shops))
    assert first == second, "Synapse's txn cache ignores user_id (if this changes, good)"
    bodies = [e["content"]["body"] for e in await timeline(buyer, room_id)
              if e["type"] == "m.room.message" and e["content"].get("body", "").startswith(
                  "from ")]
    assert len(bodies) == 1, bodies


async def test_two_shops_share_cards_into_one_room_at_once(harness: Harness, http) -> None:
    api, buyer, room_id, shops = await _room_with_two_shops(harness, http)
    for slug, key in shops:
        status, product = await api.call("POST", f"/shops/{slug}/products", key, {
            "sku": "gift-1", "title": "Gift box", "price": "10.00", "currency": "EUR"})
        assert status == 201, product

    async def share(slug: str, key: str) -> str:
        status, shared = await api.call("POST", f"/shops/{slug}/products/gift-1/share", key,
                                        {"room_id": room_id})
        assert status == 200, shared
        return shared["event_id"]

    answered: list[tuple[str, str]] = []
    for _ in range(ROUNDS):
        event_ids = await asyncio.gather(*(share(slug, key) for slug, key in shops))
        answered += list(zip([slug for slug, _ in shops], event_ids, strict=True))
    assert len({event_id for _, event_id in answered}) == 2 * ROUNDS, answered

    cards = [e for e in await timeline(buyer, room_id) if "org.mercato.product" in
             e.get("content", {})]
    by_shop = Counter(e["sender"] for e in cards)
    assert by_shop == {f"@shop_{slug}:localhost": ROUNDS for slug, _ in shops}, by_shop
    assert sorted(e["event_id"] for e in cards) == sorted(e for _, e in answered)
    # Every card names the shop that sent it.
    assert all(e["content"]["org.mercato.product"]["shop"] == e["sender"] for e in cards)
    # The txnIds Mercato chose (Synapse shows them to the appservice that sent): one per
    # card, each led by the sender's slug, which has no '.' in it, so shops never collide.
    txn_ids = await _txn_ids(harness, http, room_id, [slug for slug, _ in shops])
    assert len(txn_ids) == 2 * ROUNDS and len(set(txn_ids.values())) == 2 * ROUNDS, txn_ids
    for event_id, txn_id in txn_ids.items():
        sender = next(e["sender"] for e in cards if e["event_id"] == event_id)
        slug = sender.removeprefix("@shop_").removesuffix(":localhost")
        assert txn_id.startswith(f"mercato.card.{slug}.gift-1."), txn_id
    print(f"\nRESULT same_room_two_shops cards={len(cards)} lost=0 doubled=0")

