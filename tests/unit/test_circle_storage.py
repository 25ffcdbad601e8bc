"""The Circle's storage and feed on SQLite and PostgreSQL: a recommendation recorded and sent
through the outbox, a price change queuing one edit per recommendation, the merged feed a
friend reads, the digest at most once a day by a clock the test sets, and the shop's counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from appservices.commerce.catalog import operations as catalog
from appservices.commerce.circle import feed, operations
from appservices.commerce.circle import storage as rows
from appservices.commerce.circle.rooms import RECOMMENDATION, RECOMMENDATION_EDIT, CircleRooms
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.quotas import DAY_MS
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal
from mercato.db import Database, open_database
from mercato.matrix.outbox import Outbox
from mercato.types import MerchantSlug, UserID

OLA, KARI = "@ola:localhost", "@kari:localhost"
DEMO = MerchantSlug("demo")
NOW = 1_700_000_000_000


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.api = self

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        return {"chunk": []}

    async def send_message_event(self, room_id: str, event_type: Any, content: dict[str, Any],
                                 txn_id: str, **_: Any) -> str:
        self.messages.append((room_id, content))
        return f"$m{len(self.messages)}"


class Service:
    """The commerce appservice as the circle rooms see it, without a homeserver."""

    public_url = "http://localhost:8090"
    mercato_hosts = ("localhost",)
    bot_mxid = "@mercato:localhost"
    room_version = "12"

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sent = Sent()
        self.messages = Outbox(db, "commerce", lambda mxid: self.sent)  # type: ignore[arg-type,return-value]

    def wake_messages(self) -> None:
        pass


class Rooms(CircleRooms):
    def __init__(self, service: Service) -> None:
        self.service = service  # type: ignore[assignment]
        self.db = service.db
        self.children: dict[str, set[str]] = {}

    async def display_name(self, user_id: str) -> str:
        return user_id[1:].split(":")[0].title()

    async def create_circle_room(self, owner: str, name: str) -> str:
        return f"!circle-{owner[1:].split(':')[0]}"

    async def create_space(self, owner: str) -> str:
        return f"!space-{owner[1:].split(':')[0]}"

    async def membership(self, room_id: str, user_id: str) -> str | None:
        return None

    async def direct_partners(self, user_id: str) -> list[str]:
        return []

    async def invite(self, room_id: str, user_id: str) -> None:
        pass

    async def kick(self, room_id: str, user_id: str, reason: str) -> None:
        pass

    async def set_space_child(self, space_id: str, room_id: str, present: bool) -> None:
        (self.children.setdefault(space_id, set()).add if present
         else self.children.setdefault(space_id, set()).discard)(room_id)


class Friends:
    def __init__(self, found: dict[str, list[str]]) -> None:
        self.found = found

    async def friends_of(self, user_id: str) -> list[str]:
        return self.found.get(user_id, [])


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    await store.insert_merchant(database, store.Merchant(
        slug=DEMO, name="Demo Shop", description="", website="https://shop.example",
        mxid=UserID("@shop_demo:localhost"), owner_mxid=UserID("@merchant:localhost"),
        status="approved", created_at=NOW))
    try:
        yield database
    finally:
        await database.stop()


async def _deliver(service: Service) -> None:
    for _ in range(10):
        await service.messages.worker.run_pass()
        await service.messages.worker.idle()
        if not await service.messages._due_rooms():
            return


async def test_recommend_edit_feed_digest_and_counts(db: Database) -> None:
    service = Service(db)
    rooms = Rooms(service)
    rooms.register(service.messages)
    friends = Friends({OLA: [KARI], KARI: []})
    await catalog.create_product(db, service, Principal(kind="operator"), DEMO, {  # type: ignore[arg-type]
        "sku": "mug", "title": "Mug", "price": "24.00", "currency": "EUR"})
    await operations.opt_in(db, rooms, friends, KARI)
    view = await operations.opt_in(db, rooms, friends, OLA)
    assert view["room_id"] == "!circle-ola" and view["invited"] == [KARI]
    assert await rows.member_state(db, KARI, OLA) == "invited"  # both ways
    await rows.set_member(db, OLA, KARI, "joined", "contacts")  # as her join event says

    rec = await operations.recommend_product(db, rooms, OLA, DEMO, "mug", "Great",
                                             txn_id="t1", per_day=2, now_ms=NOW)
    again = await operations.recommend_product(db, rooms, OLA, DEMO, "mug", "Great",
                                               txn_id="t1", per_day=2, now_ms=NOW)
    assert again.id == rec.id
    await _deliver(service)
    assert len(service.sent.messages) == 1  # one send, whatever the number of friends
    room_id, content = service.sent.messages[0]
    assert room_id == "!circle-ola" and content["org.mercato.recommendation.by"] == OLA
    assert (await rows.by_id(db, rec.id)).price == "24.00"  # type: ignore[union-attr]

    # A new price: one edit, rendered when sent.
    service_with_circle = service
    service_with_circle.circle = rooms  # type: ignore[attr-defined]
    await catalog.update_product(db, service_with_circle, Principal(kind="operator"), DEMO,  # type: ignore[arg-type]
                                 "mug", {"price": "19.00"})
    await _deliver(service)
    edit = service.sent.messages[-1][1]
    assert edit["m.relates_to"]["event_id"] == "$m1"
    assert edit["m.new_content"]["org.mercato.product"]["price"] == "19.00"
    kinds = {r["kind"] for r in await db.fetch("SELECT kind FROM outbound_message")}
    assert kinds == {RECOMMENDATION, RECOMMENDATION_EDIT}

    items = await feed.feed(db, KARI, public_url=service.public_url)
    assert [(i.kind, i.recommended_by, i.price, i.note) for i in items] == [
        ("recommendation", OLA, "19.00", "Great")]
    assert await feed.feed(db, "@stranger:localhost") == []

    # The digest: due once, not again that day, not the next day with nothing new.
    await operations.set_digest(db, KARI, "!dm-kari")
    created = (await rows.by_id(db, rec.id)).created_at  # type: ignore[union-attr]
    first = await feed.next_digest(db, KARI, created + 1000)
    assert first is not None and first[0] == "!dm-kari" and "Ola recommends Mug" in first[1]
    assert await feed.next_digest(db, KARI, created + 2000) is None
    assert await feed.next_digest(db, KARI, created + 1000 + DAY_MS) is None

    # The daily limit (2 here), then the shop's counts.
    await operations.recommend_product(db, rooms, OLA, DEMO, "mug", "", txn_id="t2",
                                       per_day=2, now_ms=created + 10)
    with pytest.raises(Exception, match="2 recommendations in the last 24 hours"):
        await operations.recommend_product(db, rooms, OLA, DEMO, "mug", "", txn_id="t3",
                                           per_day=2, now_ms=created + 20)
    await _deliver(service)
    stats = await rows.shop_stats(db, DEMO)
    assert stats["recommendations"] == 2 and stats["products_recommended"] == 2

    # Opting out keeps everything recorded, and the Space holds her own room.
    assert "!circle-ola" in rooms.children["!space-ola"]
    await operations.opt_out(db, rooms, OLA)
    assert (await rows.get_circle(db, OLA)).opted_in is False  # type: ignore[union-attr]
    assert len(await rows.of_product(db, DEMO, "mug")) == 2
