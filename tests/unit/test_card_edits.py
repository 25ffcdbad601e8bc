"""Cards shared by alias, and card edits that fail: recorded, counted, retried in order.

The catalog and the outbox run against a real database (SQLite and PostgreSQL) and a
homeserver stand-in that resolves aliases and accepts or refuses edits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mautrix.errors import MForbidden, MNotFound
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from appservices.commerce.catalog import cards as card_edits
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.catalog.card_delivery import CardEditDelivery
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.rooms import UnknownRoomAlias
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal
from mercato.db import Database, open_database
from mercato.matrix.rooms import UnknownAlias, resolve_room
from mercato.types import MerchantSlug, UserID

DEMO = MerchantSlug("demo")
OPERATOR = Principal(kind="operator")
CHANNEL = "!channel:localhost"
GROUP = "!group:localhost"


class Homeserver:
    """The commerce appservice as the catalog and the outbox see it."""

    public_url = "http://localhost:8090"
    mercato_hosts = ("localhost",)

    def __init__(self, db: Database) -> None:
        self.db = db
        self.aliases = {"#shop_demo:localhost": CHANNEL}
        self.refusing: set[str] = set()  # rooms where the shop may not send
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.edits: list[tuple[str, str, str, bool]] = []  # room, card, price, look_first

    async def resolve_room(self, room: str) -> str:
        if not room.startswith("#"):
            return room
        if room not in self.aliases:
            raise UnknownAlias(room)
        return self.aliases[room]

    async def post_card(self, merchant: store.Merchant, room_id: str, content: dict[str, Any],
                        txn_id: str) -> str:
        self.posts.append((room_id, content))
        return f"$card{len(self.posts)}"

    async def edit_card(self, merchant: store.Merchant, room_id: str, event_id: str,
                        content: dict[str, Any], txn_id: str, *,
                        look_first: bool = False) -> str:
        if room_id in self.refusing:
            raise MForbidden(403, f"User {merchant.mxid} not in room {room_id}")
        price = content["m.new_content"]["org.mercato.product"]["price"]
        self.edits.append((room_id, event_id, price, look_first))
        return f"$edit{len(self.edits)}"

    async def send_direct(self, merchant: store.Merchant, user_id: str, text: str,
                          txn_id: str, *, kind: str = "direct") -> tuple[str, str]:
        return "!dm:localhost", "$dm"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "commerce")
    await database.start()
    await store.insert_merchant(database, store.Merchant(
        slug=DEMO, name="Demo Shop", description="Tees", website="https://shop.example",
        mxid=UserID("@shop_demo:localhost"), owner_mxid=UserID("@merchant:localhost"),
        status="approved", created_at=1_700_000_000_000))
    await catalog.create_product(database, Homeserver(database), OPERATOR, DEMO, {
        "sku": "mug", "title": "Mug", "price": "24.00", "currency": "EUR"})
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
def homeserver(db: Database) -> Homeserver:
    return Homeserver(db)


async def _reprice(db: Database, homeserver: Homeserver, price: str) -> None:
    await catalog.update_product(db, homeserver, OPERATOR, DEMO, "mug", {"price": price})


async def _due_now(db: Database) -> None:
    """Skip the backoff: every waiting edit is due."""
    await db.execute("UPDATE card_edit SET next_attempt_at=0 WHERE state='pending'")


def _edits_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("mercato_card_edits_total", {"outcome": outcome}) or 0.0


async def test_a_card_shared_by_alias_is_stored_and_answered_by_room_id(
        db: Database, homeserver: Homeserver) -> None:
    shared = await catalog.share_card(db, homeserver, OPERATOR, DEMO, "mug",
                                      "#shop_demo:localhost")
    assert shared == {"event_id": "$card1", "room_id": CHANNEL}
    assert homeserver.posts[0][0] == CHANNEL
    assert [c["room_id"] for c in await product_rows.cards_of(db, DEMO, "mug")] == [CHANNEL]
    await _reprice(db, homeserver, "19.50")
    assert homeserver.edits == [(CHANNEL, "$card1", "19.50", False)]


async def test_an_unknown_alias_is_refused_by_name_and_nothing_is_posted(
        db: Database, homeserver: Homeserver) -> None:
    for room in ("#nope:localhost", "#no-server", "#a/b?c:localhost"):
        with pytest.raises(UnknownRoomAlias) as refused:
            await catalog.share_card(db, homeserver, OPERATOR, DEMO, "mug", room)
        assert refused.value.message == f"room_id: no room has the alias {room}"
        assert (refused.value.status, refused.value.errcode) == (400, "MERCATO_UNKNOWN_ALIAS")
    assert homeserver.posts == [] and await product_rows.cards_of(db, DEMO, "mug") == []


async def test_a_failed_edit_is_logged_counted_and_retried_by_the_outbox(
        db: Database, homeserver: Homeserver) -> None:
    await catalog.share_card(db, homeserver, OPERATOR, DEMO, "mug", GROUP)
    homeserver.refusing.add(GROUP)
    retrying = _edits_counted("retrying")
    with capture_logs() as logs:
        await _reprice(db, homeserver, "19.50")
    failed = [e for e in logs if e["event"] == "card.edit_failed"]
    assert len(failed) == 1 and failed[0]["log_level"] == "warning"
    assert {k: failed[0][k] for k in ("shop", "sku", "room", "event_id")} == {
        "shop": DEMO, "sku": "mug", "room": GROUP, "event_id": "$card1"}
    assert "not in room" in failed[0]["error"]
    assert _edits_counted("retrying") == retrying + 1
    assert (await card_edits.card_stats(db, DEMO)) == {
        "shared": 1, "edits_sent": 0, "edits_waiting": 1, "edits_given_up": 0,
        "edit_failures": 1}
    assert (await product_rows.cards_of(db, DEMO, "mug"))[0]["price"] == "24.00"

    outbox = CardEditDelivery(homeserver)  # type: ignore[arg-type]
    await outbox.run_pass()  # not due yet: the backoff holds it
    assert homeserver.edits == []
    homeserver.refusing.clear()  # the shop may send again
    await _due_now(db)
    await outbox.run_pass()
    # The retry looks for an earlier try's edit before sending again.
    assert homeserver.edits == [(GROUP, "$card1", "19.50", True)]
    assert (await product_rows.cards_of(db, DEMO, "mug"))[0]["price"] == "19.50"
    stats = await card_edits.card_stats(db, DEMO)
    assert (stats["edits_sent"], stats["edits_waiting"], stats["edit_failures"]) == (1, 0, 1)
    await outbox.run_pass()
    assert len(homeserver.edits) == 1  # sent once


async def test_a_newer_price_supersedes_a_waiting_edit_and_rooms_keep_their_order(
        db: Database, homeserver: Homeserver) -> None:
    await catalog.create_product(db, homeserver, OPERATOR, DEMO, {
        "sku": "tee", "title": "Tee", "price": "15.00", "currency": "EUR"})
    await catalog.share_card(db, homeserver, OPERATOR, DEMO, "mug", GROUP)
    await catalog.share_card(db, homeserver, OPERATOR, DEMO, "tee", GROUP)
    homeserver.refusing.add(GROUP)
    await _reprice(db, homeserver, "19.50")
    await _reprice(db, homeserver, "18.00")  # the 19.50 edit is no longer worth sending
    homeserver.refusing.clear()
    # The tee's edit waits behind the mug's in the same room, though the room is open.
    await catalog.update_product(db, homeserver, OPERATOR, DEMO, "tee", {"price": "12.00"})
    assert homeserver.edits == []
    await _due_now(db)
    await CardEditDelivery(homeserver).run_pass()  # type: ignore[arg-type]
    assert [(card, price) for _, card, price, _ in homeserver.edits] == [
        ("$card1", "18.00"), ("$card2", "12.00")]


async def test_an_edit_is_parked_after_its_last_try(db: Database,
                                                   homeserver: Homeserver) -> None:
    await catalog.share_card(db, homeserver, OPERATOR, DEMO, "mug", GROUP)
    homeserver.refusing.add(GROUP)
    await _reprice(db, homeserver, "19.50")
    await db.execute("UPDATE card_edit SET attempts=$1", card_edits.MAX_ATTEMPTS - 1)
    given_up = _edits_counted("given_up")
    await _due_now(db)
    await CardEditDelivery(homeserver).run_pass()  # type: ignore[arg-type]
    assert _edits_counted("given_up") == given_up + 1
    stats = await card_edits.card_stats(db, DEMO)
    assert (stats["edits_waiting"], stats["edits_given_up"]) == (0, 1)


async def test_a_card_stored_under_an_alias_is_edited_in_its_room_and_fixed(
        db: Database, homeserver: Homeserver) -> None:
    product = await catalog.get_product(db, DEMO, "mug")
    await product_rows.record_card(db, "$old", "#shop_demo:localhost", product)  # as before
    await _reprice(db, homeserver, "19.50")
    assert homeserver.edits == [(CHANNEL, "$old", "19.50", False)]
    assert [c["room_id"] for c in await product_rows.cards_of(db, DEMO, "mug")] == [CHANNEL]


class Directory:
    """A homeserver's client API as mautrix calls it: the room directory only."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def request(self, method: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        self.paths.append(str(path))
        if str(path).endswith("%23shop_demo%3Alocalhost"):
            return {"room_id": CHANNEL, "servers": ["localhost"]}
        raise MNotFound(404, "Room alias not found")


async def test_resolve_room_asks_the_directory_with_the_alias_escaped() -> None:
    directory = Directory()
    assert await resolve_room(directory, CHANNEL) == CHANNEL  # type: ignore[arg-type]
    assert directory.paths == []
    assert await resolve_room(directory, "#shop_demo:localhost") == CHANNEL  # type: ignore[arg-type]
    with pytest.raises(UnknownAlias, match="no room has the alias #x/y:localhost"):
        await resolve_room(directory, "#x/y:localhost")  # type: ignore[arg-type]
    assert directory.paths == ["/_matrix/client/v3/directory/room/%23shop_demo%3Alocalhost",
                               "/_matrix/client/v3/directory/room/%23x%2Fy%3Alocalhost"]
