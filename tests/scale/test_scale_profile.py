"""The scale profile: Synapse workers on PostgreSQL with Redis, Mercato on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
from collections.abc import Iterator

import aiohttp
import pytest

from mercato_ops.render import ScaleLayout
from mercato_ops.router import upstream_for
from mercato_ops.testnet import RunningNetwork, network_running, write_test_config
from tests.conftest import missing_service
from tests.integration.client import MatrixClient
from tests.integration.commerce_api import CommerceApi
from tests.integration.commerce_api import new_user as commerce_user
from tests.integration.commerce_api import open_shop as open_commerce_shop
from tests.integration.shop_helpers import Api, channel_listed, new_user, open_shop


def test_reads_go_to_the_generic_worker_and_writes_to_main() -> None:
    main, reader = "http://main", "http://reader"
    assert upstream_for("/_matrix/client/v3/sync", "GET", main, reader) == reader
    assert upstream_for("/_matrix/client/v3/rooms/!r:x/messages", "GET", main, reader) == reader
    assert upstream_for("/_matrix/client/v3/publicRooms", "GET", main, reader) == reader
    # The main process's members cache can lag a worker-persisted join (bench/notes.md).
    assert upstream_for("/_matrix/client/v3/rooms/!r:x/joined_members", "GET", main,
                        reader) == reader
    assert upstream_for("/_matrix/federation/v1/send/123", "PUT", main, reader) == reader
    assert upstream_for("/_matrix/client/v3/rooms/!r:x/send/m.room.message/1", "PUT", main,
                        reader) == main
    assert upstream_for("/_matrix/client/v3/login", "POST", main, reader) == main
    assert upstream_for("/_synapse/admin/v1/register", "GET", main, reader) == main
    assert upstream_for("/health", "GET", main, reader) == main


@pytest.fixture(scope="module")
def scale_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """A scale network of its own (its own databases and its own Redis server)."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError as e:
        missing_service(f"PostgreSQL for the scale profile ({e})")
    base = tmp_path_factory.mktemp("scale")
    with network_running(write_test_config(base), profile="scale") as running:
        yield running


def _pid(network: RunningNetwork, component: str) -> int:
    found = re.findall(rf'"component": "{component}", "pid": (\d+), "event": "network.started"',
                       network.output())
    assert found, f"{component} was never started"
    return int(found[-1])


async def test_every_worker_answers_and_data_is_on_postgres(scale_network: RunningNetwork,
                                                            http) -> None:
    layout = ScaleLayout.for_config(scale_network.config)
    for worker in layout.workers:
        async with http.get(f"http://127.0.0.1:{worker.port}/health") as resp:
            assert resp.status == 200, worker.name
    assert scale_network.config.database_url("commerce").startswith("postgres://")
    merchants = scale_network.rows("commerce", "SELECT slug, status FROM merchant")
    assert ("demo", "approved") in merchants


async def test_every_synapse_process_serves_its_metrics(scale_network: RunningNetwork,
                                                       http) -> None:
    layout = ScaleLayout.for_config(scale_network.config)
    ports = {"main": scale_network.config.synapse.metrics_port,
             **{worker.name: worker.metrics_port for worker in layout.workers}}
    for name, port in ports.items():
        async with http.get(f"http://127.0.0.1:{port}/_synapse/metrics") as resp:
            assert resp.status == 200, name
            assert "synapse_build_info" in await resp.text(), name
    # The router on synapse.port is the public door: it does not serve them.
    async with http.get(f"{scale_network.hs_url}/_synapse/metrics") as resp:
        assert resp.status == 404


async def test_a_new_shops_channel_is_listed_in_the_room_directory(
        scale_network: RunningNetwork, http) -> None:
    buyer = await new_user(scale_network, http, "browser")
    slug, _ = await open_shop(Api(scale_network, http), scale_network.demo["merchant"]["user_id"])
    listed = await channel_listed(buyer, f"#shop_{slug}:localhost")
    assert listed["name"] == f"Shop {slug}"
    assert listed["world_readable"] is True


async def test_campaign_delivered_while_a_worker_restarts(scale_network: RunningNetwork,
                                                          http) -> None:
    api = Api(scale_network, http)
    demo = scale_network.demo
    key = demo["shop"]["api_key"]
    buyer = await MatrixClient(http, scale_network.hs_url).login(
        demo["buyer"]["user_id"], demo["buyer"]["password"])
    room_id = await buyer.join(demo["channel_alias"])

    # The event persister writes every event: take it down, post, let it come back.
    persister = _pid(scale_network, "synapse-event_persister1")
    os.kill(persister, signal.SIGKILL)
    status, campaign = await api.call("POST", "/shops/demo/campaigns", key, {
        "kind": "text", "fields": {"title": "Worker restart", "text": "Sent through it all"}})
    assert status == 201, campaign
    assert (await api.call("POST", f"/shops/demo/campaigns/{campaign['id']}/schedule",
                           key))[0] == 200

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if _pid(scale_network, "synapse-event_persister1") != persister:
            break
        await asyncio.sleep(0.5)
    assert _pid(scale_network, "synapse-event_persister1") != persister, "not restarted"
    await buyer.wait_for_message(room_id, lambda e: "Sent through it all" in e.get(
        "content", {}).get("body", ""), timeout=120)
    posts = [e for e in await buyer.messages(room_id) if e.get("content", {}).get(
        "org.mercato.post", {}).get("campaign") == campaign["id"]]
    assert len(posts) == 1, "the post must arrive exactly once"
    assert "network.worker_restarted" in scale_network.output()


async def test_fifty_orders_for_the_last_five_units_five_are_placed(
        scale_network: RunningNetwork, http) -> None:
    """Fifty buyers order the last five lamps at once through the commerce API on
    PostgreSQL: five orders are placed, the others are told the lamp sold out, none is
    oversold, and the lamp's card in the channel is edited to show it."""
    api = CommerceApi(scale_network, http)
    owner = await commerce_user(scale_network, http, "lampshop")
    slug = await open_commerce_shop(api, owner.user_id, "scale-orders")
    staff = api.acting_as(owner.user_id)
    made = await api.post(f"/shops/{slug}/products", staff, {
        "sku": "lamp", "title": "Desk lamp", "price": "30.00", "currency": "EUR",
        "quantity": 5})
    assert made.status == 201, made
    follower = await commerce_user(scale_network, http, "watcher")
    channel = await follower.join(f"#shop_{slug}:localhost")
    shared = await api.post(f"/shops/{slug}/products/lamp/share", staff, {"room_id": channel})
    assert shared.status == 200, shared
    at_once = asyncio.Semaphore(10)

    async def buyer(n: int) -> str:
        async with at_once:
            return (await commerce_user(scale_network, http, f"burst{n}")).user_id

    buyers = await asyncio.gather(*(buyer(n) for n in range(50)))
    answers = await asyncio.gather(*(api.post("/me/orders", api.acting_as(b), {
        "shop": slug, "items": [{"sku": "lamp", "quantity": 1}],
        "delivery": {"kind": "pickup"}, "payment": "pickup"}) for b in buyers))

    placed = [a for a in answers if a.status == 201]
    refused = [a for a in answers if a.status != 201]
    assert len(placed) == 5 and len({a.body["id"] for a in placed}) == 5, answers
    assert {(a.status, a.errcode, a.error) for a in refused} == {
        (409, "MERCATO_SOLD_OUT", "Desk lamp (lamp) is sold out.")}, (
        refused, scale_network.logged("api.failed"))
    lamp = (await api.get(f"/shops/{slug}/products/lamp")).body
    assert (lamp["quantity"], lamp["stock"]) == (0, "out_of_stock"), lamp
    assert scale_network.rows("commerce", "SELECT COUNT(*) FROM orders WHERE merchant_slug=?",
                              slug) == [(5,)]
    edit = await follower.wait_for_message(channel, lambda e: e.get("content", {}).get(
        "m.relates_to", {}).get("event_id") == shared.body["event_id"] and e["content"].get(
        "m.new_content", {}).get("org.mercato.product", {}).get("stock") == "out_of_stock",
        timeout=60)
    assert "Out of stock" in edit["content"]["m.new_content"]["body"]


@pytest.fixture
async def http() -> aiohttp.ClientSession:  # type: ignore[misc]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session
