"""The operator decides on shops with `mercato admin merchants …`."""

from __future__ import annotations

import subprocess
import sys
import uuid

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient


def mercato(network: RunningNetwork, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mercato_ops", "--config",
                           str(network.config_path), *args],
                          capture_output=True, text=True, timeout=120)


async def test_operator_approves_and_suspends_from_the_cli(
        network: RunningNetwork, http, buyer: MatrixClient) -> None:
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {network.config.commerce.operator_token}"}
    async with http.post(f"{network.commerce_url}/api/v1/shops", headers=headers, json={
            "slug": slug, "name": "Corner Bakery", "owner": "@merchant:localhost"}) as resp:
        assert resp.status == 201, await resp.text()

    pending = mercato(network, "admin", "merchants", "list", "--status", "pending")
    assert pending.returncode == 0 and slug in pending.stdout

    approved = mercato(network, "admin", "merchants", "approve", slug)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == f"{slug}: approved"
    profile = await buyer.request("GET", f"/_matrix/client/v3/profile/@shop_{slug}:localhost")
    assert profile["displayname"] == "Corner Bakery"

    again = mercato(network, "admin", "merchants", "approve", slug)
    assert again.returncode != 0 and "it is approved" in again.stderr

    no_reason = mercato(network, "admin", "merchants", "suspend", slug)
    assert no_reason.returncode != 0 and "--reason" in no_reason.stderr
    suspended = mercato(network, "admin", "merchants", "suspend", slug, "--reason", "fraud")
    assert suspended.stdout.strip() == f"{slug}: suspended"
    room_id = await buyer.resolve_alias(f"#shop_{slug}:localhost")
    topic = (await buyer.state(room_id, "m.room.topic"))["topic"]
    assert topic.startswith("⚠ Suspended")

    shown = mercato(network, "admin", "merchants", "show", slug)
    assert '"action": "suspend"' in shown.stdout and '"reason": "fraud"' in shown.stdout


async def test_verified_shops_are_listed_in_the_directory_space(
        network: RunningNetwork, http, buyer: MatrixClient) -> None:
    slug = f"dir-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {network.config.commerce.operator_token}"}
    async with http.post(f"{network.commerce_url}/api/v1/shops", headers=headers, json={
            "slug": slug, "name": f"Tea House {slug}", "website": "https://tea.example",
            "owner": "@merchant:localhost"}) as resp:
        assert resp.status == 201, await resp.text()
    assert mercato(network, "admin", "merchants", "approve", slug).returncode == 0
    space_id = await buyer.resolve_alias("#shop_directory:localhost")
    channel_id = await buyer.resolve_alias(f"#shop_{slug}:localhost")

    async def children() -> set[str]:
        hierarchy = await buyer.request("GET", f"/_matrix/client/v1/rooms/{space_id}/hierarchy")
        return {room["room_id"] for room in hierarchy["rooms"]}

    assert channel_id not in await children(), "an unverified shop must not be listed"
    verified = mercato(network, "admin", "merchants", "verify", slug)
    assert verified.returncode == 0, verified.stderr
    assert channel_id in await children()
    assert mercato(network, "admin", "merchants", "suspend", slug, "--reason",
                   "test").returncode == 0
    assert channel_id not in await children(), "a suspended shop must leave the directory"
    assert mercato(network, "admin", "merchants", "reinstate", slug).returncode == 0
    assert channel_id in await children()
    rooms = (await buyer.request("GET", "/_matrix/client/v3/publicRooms"))["chunk"]
    assert any(r.get("canonical_alias") == "#shop_directory:localhost"
               and r.get("room_type") == "m.space" for r in rooms)
