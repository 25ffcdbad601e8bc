"""Cards shared by alias, and card edits through the outbox: recorded, counted, retried in order.

The catalog, the core outbox and the card-edit hooks run against a real database (SQLite
and PostgreSQL) and a homeserver stand-in that resolves aliases and accepts or refuses
the shop's messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import pytest
from mautrix.errors import MForbidden, MNotFound
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from appservices.commerce import messages as message_kinds
from appservices.commerce.catalog import cards as card_edits
from appservices.commerce.catalog import operations as catalog
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.catalog.card_delivery import CardEditDelivery
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.rooms import UnknownRoomAlias
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal
from mercato.db import Connection, Database, UpgradeTable, open_database
from mercato.matrix.outbox import BACKOFF, Message, Outbox
from mercato.matrix.rooms import UnknownAlias, resolve_room
from mercato.matrix.sending import MARKER
from mercato.types import MerchantSlug, UserID

DEMO = MerchantSlug("demo")
OPERATOR = Principal(kind="operator")
CHANNEL = "!channel:localhost"
GROUP = "!group:localhost"


class ShopIntent:
    """The shop's user as the outbox sends with it: refused where it may not post."""

    def __init__(self, homeserver: Homeserver, mxid: str) -> None:
        self.homeserver = homeserver
        self.mxid = mxid
        self.api = self

    async def request(self, method: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        """The room's recent messages, where a retried edit is looked for first."""
        self.homeserver.looked.append(unquote(str(path).split("/rooms/")[1].split("/")[0]))
        return {"chunk": []}

    async def send_message_event(self, room_id: str, event_type: Any, content: dict[str, Any],
                                 txn_id: str, retry_count: int = 0, **_: Any) -> str:
        if room_id in self.homeserver.refusing:
            raise MForbidden(403, f"User {self.mxid} not in room {room_id}")
        assert content[MARKER] == txn_id
        if "m.new_content" in content:
            price = content["m.new_content"]["org.mercato.product"]["price"]
            self.homeserver.edits.append(
                (room_id, content["m.relates_to"]["event_id"], price))
            return f"$edit{len(self.homeserver.edits)}"
        self.homeserver.posts.append((room_id, content))
        return f"$card{len(self.homeserver.posts)}"


class Homeserver:
    """The commerce appservice as the catalog, the outbox and its card-edit hooks see it."""

    public_url = "http://localhost:8090"
    mercato_hosts = ("localhost",)

    def __init__(self, db: Database) -> None:
        self.db = db
        self.aliases = {"#shop_demo:localhost": CHANNEL}
        self.refusing: set[str] = set()  # rooms where the shop may not send
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.edits: list[tuple[str, str, str]] = []  # room, card, price
        self.looked: list[str] = []  # rooms searched for an earlier try's edit
        self.messages = Outbox(db, "commerce", lambda mxid: ShopIntent(self, mxid))  # type: ignore[arg-type,return-value]
        CardEditDelivery(self).register(self.messages)  # type: ignore[arg-type]

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

    async def queue_card_edit(self, merchant: store.Merchant, room_id: str,
                              card_event_id: str, txn_id: str, conn: Connection) -> None:
        await self.messages.replace_pending(Message(
            txn_id=txn_id, room_id=room_id, sender=merchant.mxid, content={},
            kind=message_kinds.CARD_EDIT, subject=card_event_id), conn)

    def wake_messages(self) -> None:
        pass

    async def send_direct(self, merchant: store.Merchant, user_id: str, text: str,
                          txn_id: str, *, kind: str = "direct") -> tuple[str, str]:
        return "!dm:localhost", "$dm"

    async def deliver(self) -> None:
        """Outbox passes until no room has a message due."""
        for _ in range(20):
            await self.messages.worker.run_pass()
            await self.messages.worker.idle()
            if not await self.messages._due_rooms():
                return


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


async def _reprice(db: Database, homeserver: Homeserver, price: str, sku: str = "mug") -> None:
    await catalog.update_product(db, homeserver, OPERATOR, DEMO, sku, {"price": price})
    await homeserver.deliver()


async def _due_now(db: Database) -> None:
    """Skip the backoff: every waiting message is due."""
    await db.execute("UPDATE outbound_message SET next_attempt_at=0 WHERE state='pending'")


def _edits_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("mercato_card_edits_total", {"outcome": outcome}) or 0.0


async def _card_price(db: Database) -> str:
    return str((await product_rows.cards_of(db, DEMO, "mug"))[0]["price"])


async def test_a_card_shared_by_alias_is_stored_and_answered_by_room_id(
        db: Database, homeserver: Homeserver) -> None:
    shared = await catalog.share_card(db, homeserver, OPERATOR, DEMO, "mug",
                                      "#shop_demo:localhost")
    assert shared == {"event_id": "$card1", "room_id": CHANNEL}
    assert homeserver.posts[0][0] == CHANNEL
    assert [c["room_id"] for c in await product_rows.cards_of(db, DEMO, "mug")] == [CHANNEL]
    await _reprice(db, homeserver, "19.50")
    assert homeserver.edits == [(CHANNEL, "$card1", "19.50")]
    assert await _card_price(db) == "19.50"


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
    assert await _card_price(db) == "24.00"

    await homeserver.deliver()  # not due yet: the backoff holds it
    assert homeserver.edits == []
    homeserver.refusing.clear()  # the shop may send again
    await _due_now(db)
    await homeserver.deliver()
    # The retry looks for an earlier try's edit before sending again.
    assert homeserver.edits == [(GROUP, "$card1", "19.50")]
    assert homeserver.looked == [GROUP]
    assert await _card_price(db) == "19.50"
    stats = await card_edits.card_stats(db, DEMO)
    assert (stats["edits_sent"], stats["edits_waiting"], stats["edit_failures"]) == (1, 0, 1)
    await _due_now(db)
    await homeserver.deliver()
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
    await _reprice(db, homeserver, "12.00", sku="tee")
    assert homeserver.edits == []
    await _due_now(db)
    await homeserver.deliver()
    assert [(card, price) for _, card, price in homeserver.edits] == [
        ("$card1", "18.00"), ("$card2", "12.00")]
    stats = await card_edits.card_stats(db, DEMO)
    assert (stats["edits_sent"], stats["edits_waiting"]) == (2, 0)


async def test_an_edit_is_parked_after_its_last_try(db: Database,
                                                   homeserver: Homeserver) -> None:
    await catalog.share_card(db, homeserver, OPERATOR, DEMO, "mug", GROUP)
    homeserver.refusing.add(GROUP)
    await _reprice(db, homeserver, "19.50")
    await db.execute("UPDATE outbound_message SET attempts=$1 WHERE kind='card_edit'",
                     BACKOFF.max_attempts - 1)
    given_up = _edits_counted("given_up")
    await _due_now(db)
    await homeserver.deliver()
    assert _edits_counted("given_up") == given_up + 1
    stats = await card_edits.card_stats(db, DEMO)
    assert (stats["edits_waiting"], stats["edits_given_up"]) == (0, 1)


async def test_a_suspended_shop_edits_nothing_until_reinstated(
        db: Database, homeserver: Homeserver) -> None:
    await catalog.share_card(db, homeserver, OPERATOR, DEMO, "mug", GROUP)
    await db.execute("UPDATE merchant SET status='suspended' WHERE slug=$1", DEMO)
    await _reprice(db, homeserver, "19.50")
    assert homeserver.edits == []
    stats = await card_edits.card_stats(db, DEMO)
    assert (stats["edits_waiting"], stats["edit_failures"]) == (1, 0)  # held, not failed
    await db.execute("UPDATE merchant SET status='approved' WHERE slug=$1", DEMO)
    await _due_now(db)
    await homeserver.deliver()
    assert homeserver.edits == [(GROUP, "$card1", "19.50")]


async def test_the_edit_of_a_deleted_product_is_dropped(
        db: Database, homeserver: Homeserver) -> None:
    await catalog.share_card(db, homeserver, OPERATOR, DEMO, "mug", GROUP)
    homeserver.refusing.add(GROUP)
    await _reprice(db, homeserver, "19.50")
    await catalog.delete_product(db, OPERATOR, DEMO, "mug")
    homeserver.refusing.clear()
    await _due_now(db)
    await homeserver.deliver()
    assert homeserver.edits == []
    assert await db.fetchval("SELECT state FROM outbound_message WHERE kind='card_edit'") \
        == "dropped"
    assert (await card_edits.card_stats(db, DEMO))["edits_waiting"] == 0


async def test_a_card_stored_under_an_alias_is_edited_in_its_room_and_fixed(
        db: Database, homeserver: Homeserver) -> None:
    product = await catalog.get_product(db, DEMO, "mug")
    await product_rows.record_card(db, "$old", "#shop_demo:localhost", product)  # as before
    await _reprice(db, homeserver, "19.50")
    assert homeserver.edits == [(CHANNEL, "$old", "19.50")]
    assert [c["room_id"] for c in await product_rows.cards_of(db, DEMO, "mug")] == [CHANNEL]
    assert (await card_edits.card_stats(db, DEMO))["edits_sent"] == 1


async def test_edits_waiting_at_the_upgrade_move_into_the_outbox_and_are_sent(
        database_url: str) -> None:
    before = UpgradeTable(version_table_name="commerce_version", database_name="commerce")
    before.upgrades = upgrade_table.upgrades[:10]  # v10: card edits kept rows of their own
    old = open_database(database_url, before, "commerce")
    await old.start()
    try:
        await old.execute("INSERT INTO merchant (slug, name, mxid, owner_mxid, status,"
                          " created_at) VALUES ('demo', 'Demo', '@shop_demo:localhost',"
                          " '@o:localhost', 'approved', 1)")
        await old.execute("INSERT INTO product (merchant_slug, sku, title, price, currency,"
                          " stock, created_at, updated_at) VALUES ('demo', 'mug', 'Mug',"
                          " '19.50', 'EUR', 'in_stock', 1, 1)")
        await old.execute("INSERT INTO card (event_id, room_id, merchant_slug, sku, price,"
                          " stock, sent_at) VALUES ('$card', $1, 'demo', 'mug', '24.00',"
                          " 'in_stock', 1)", GROUP)
        for state, attempts in (("sent", 1), ("pending", 2)):
            await old.execute("INSERT INTO card_edit (card_event_id, room_id, merchant_slug,"
                              " sku, state, attempts, created_at) VALUES ('$card', $1, 'demo',"
                              " 'mug', $2, $3, 1)", GROUP, state, attempts)
        waiting = await old.fetchval("SELECT id FROM card_edit WHERE state='pending'")
    finally:
        await old.stop()
    db = open_database(database_url, upgrade_table, "commerce")
    await db.start()
    try:
        moved = await db.fetch("SELECT txn_id, room_id, sender, kind, subject, attempts"
                               " FROM outbound_message")
        assert [dict(r) for r in moved] == [{
            "txn_id": f"mercato.cardedit.{waiting}", "room_id": GROUP,
            "sender": "@shop_demo:localhost", "kind": "card_edit", "subject": "$card",
            "attempts": 2}]
        homeserver = Homeserver(db)
        await _due_now(db)
        await homeserver.deliver()
        assert homeserver.edits == [(GROUP, "$card", "19.50")]
        assert homeserver.looked == [GROUP]  # tried before the upgrade: looked for first
        assert (await card_edits.card_stats(db, DEMO))["edits_sent"] == 2
    finally:
        await db.stop()


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
