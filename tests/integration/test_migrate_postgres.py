"""An operator moves a running SQLite network to PostgreSQL, as docs/operator-guide.md says:
stop it, run `mercato migrate-to-postgres`, start it again. Nothing a user had is lost,
and the old mercato.yaml takes the network back to SQLite."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from mercato.config import load_config
from mercato_ops.testnet import RunningNetwork, network_running, write_test_config
from tests.integration.shop_helpers import Api, new_user, open_shop

# It starts its own networks on SQLite: what only the single-process profile has.
pytestmark = pytest.mark.single_profile


def migrate(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mercato_ops", "--config", str(config_path),
                           "migrate-to-postgres", *args],
                          capture_output=True, text=True, timeout=900)


def body(event: dict) -> str:
    return event.get("content", {}).get("body", "")


def posts(events: list[dict], shop: str, text: str) -> list[dict]:
    return [e for e in events if e["type"] == "m.room.message" and e["sender"] == shop
            and text in body(e)]


async def post(api: Api, slug: str, key: str, campaign: dict) -> dict:
    status, created = await api.call("POST", f"/shops/{slug}/campaigns", key, campaign)
    assert status == 201, created
    status, scheduled = await api.call(
        "POST", f"/shops/{slug}/campaigns/{created['id']}/schedule", key)
    assert status == 200, scheduled
    return created


async def claim(network: RunningNetwork, http: aiohttp.ClientSession, coupon_id: int,
                user_id: str) -> tuple[int, dict]:
    """A claim as the shop bot makes it for a user."""
    async with http.post(f"{network.commerce_url}/api/v1/coupons/{coupon_id}/claim", headers={
            "Authorization": f"Bearer {network.config.commerce.service_token}",
            "X-Mercato-Acting-User": user_id}) as resp:
        return resp.status, await resp.json(content_type=None)


async def databases(prefix: str) -> set[str]:
    admin = await asyncpg.connect("postgres://postgres@127.0.0.1:5432/postgres")
    try:
        return {r["datname"] for r in await admin.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix)}
    finally:
        await admin.close()


async def test_a_sqlite_network_moves_to_postgres_with_every_message_follower_and_coupon(
        tmp_path: Path) -> None:
    config_path = write_test_config(tmp_path)
    prefix = load_config(config_path).scale.database_prefix
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            await _move(config_path, prefix, http)
    finally:
        admin = await asyncpg.connect("postgres://postgres@127.0.0.1:5432/postgres")
        try:
            for name in await databases(prefix):
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _move(config_path: Path, prefix: str, http: aiohttp.ClientSession) -> None:
    # -- a shop street on SQLite ------------------------------------------------------------
    with network_running(config_path, profile="single", log_name="sqlite.out") as before:
        assert before.config.synapse.database == "sqlite"
        api = Api(before, http)
        owner = await new_user(before, http, "owner")
        slug, key = await open_shop(api, owner.user_id)
        shop = f"@shop_{slug}:localhost"
        buyer = await new_user(before, http, "buyer")
        channel = await buyer.join(f"#shop_{slug}:localhost")

        first = await post(api, slug, key, {"kind": "text", "fields": {
            "title": "Spring sale", "text": "Boots at half price"}})
        await buyer.wait_for_message(channel, lambda e: "Boots at half price" in body(e))
        expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        coupon = await post(api, slug, key, {"kind": "coupon", "fields": {
            "title": "The last voucher"}, "coupon": {"stock": 1, "expires_at": expires}})
        coupon_post = await buyer.wait_for_message(
            channel, lambda e: "The last voucher" in body(e) and e["sender"] == shop)
        await buyer.send(channel, {"m.relates_to": {"rel_type": "m.annotation",
                                                    "event_id": coupon_post["event_id"],
                                                    "key": "🎟️"}}, event_type="m.reaction")
        dm = await buyer.wait_for_invite(shop)
        await buyer.join(dm)
        code_message = await buyer.wait_for_message(
            dm, lambda e: e["sender"] == shop and "Your code" in body(e))
        code = body(code_message).split(": ", 1)[1].split()[0]
        await buyer.send_text(dm, "Do you have them in size 44?")

        # While the network runs, the command refuses and changes nothing.
        config_text = config_path.read_text()
        running = migrate(config_path)
        assert running.returncode == 1
        assert "the network is running" in running.stderr
        assert f"{before.config.synapse.port}, synapse.port" in running.stderr
        assert "mercato.yaml was not changed" in running.stderr
        assert config_path.read_text() == config_text
        assert await databases(prefix) == set()

    data = before.config.data_path
    component_files = {p.name: p.read_bytes() for p in data.iterdir()
                       if p.name.startswith(("commerce.db", "contacts.db"))}

    # -- a target that already holds tables is refused, nothing is created ------------------------
    admin = await asyncpg.connect("postgres://postgres@127.0.0.1:5432/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{prefix}commerce"')
    finally:
        await admin.close()
    leftover = await asyncpg.connect(f"postgres://postgres@127.0.0.1:5432/{prefix}commerce")
    try:
        await leftover.execute("CREATE TABLE leftover (id INTEGER)")
    finally:
        await leftover.close()
    refused = migrate(config_path)
    assert refused.returncode == 1
    assert f"{prefix}commerce" in refused.stderr and "already hold tables" in refused.stderr
    assert "--replace" in refused.stderr
    assert config_path.read_text() == config_text
    assert await databases(prefix) == {f"{prefix}commerce"}

    # -- the move ------------------------------------------------------------------------------
    moved = migrate(config_path, "--replace")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "Done." in moved.stdout
    backups = list(config_path.parent.glob("mercato.yaml.sqlite-*"))
    assert len(backups) == 1 and backups[0].read_text() == config_text
    assert await databases(prefix) == {f"{prefix}synapse", f"{prefix}commerce",
                                       f"{prefix}contacts"}
    assert {p.name: p.read_bytes() for p in data.iterdir() if p.name.startswith(
        ("commerce.db", "contacts.db"))} == component_files, "the SQLite files are for going back"
    again = migrate(config_path)
    assert again.returncode == 1 and "nothing on SQLite to migrate" in again.stderr

    # -- the same network on PostgreSQL, single profile ------------------------------------------
    with network_running(config_path, profile="single", log_name="postgres.out") as after:
        for database in (after.config.synapse.database, after.config.database_url("commerce"),
                         after.config.database_url("contacts")):
            assert database.startswith(f"postgres://postgres@127.0.0.1:5432/{prefix}")
        homeserver = (after.config.data_path / "synapse" / "homeserver.yaml").read_text()
        assert "psycopg2" in homeserver and f"{prefix}synapse" in homeserver
        api = Api(after, http)

        # The buyer is still logged in, and sees every message of the channel and the DM.
        history = await buyer.messages(channel)
        assert len(posts(history, shop, "Boots at half price")) == 1
        assert len(posts(history, shop, "The last voucher")) == 1
        conversation = await buyer.messages(dm)
        assert [body(e) for e in conversation if "Your code" in body(e)] == [
            body(code_message)]
        assert any(e["sender"] == buyer.user_id and body(e) == "Do you have them in size 44?"
                   for e in conversation)

        # Still a follower, the coupon still claimed: by them, and by nobody else.
        status, stats = await api.call("GET", f"/shops/{slug}/stats", key)
        assert status == 200 and stats["followers"] == 1, stats
        row = next(c for c in stats["campaigns"] if c["id"] == coupon["id"])
        assert row["claims"] == 1 and row["reach"] == 1, row
        status, mine = await claim(after, http, coupon["coupon_id"], buyer.user_id)
        assert status == 200 and mine["sent_by_dm"] is True, mine
        async with http.get(f"{after.commerce_url}/api/v1/me/coupons", headers={
                "Authorization": f"Bearer {after.config.commerce.service_token}",
                "X-Mercato-Acting-User": buyer.user_id}) as resp:
            assert code in str(await resp.json())
        latecomer = await new_user(after, http, "latecomer")
        status, sold_out = await claim(after, http, coupon["coupon_id"], latecomer.user_id)
        assert status == 410 and sold_out["errcode"] == "MERCATO_COUPON_SOLD_OUT", sold_out

        # New posts are delivered, exactly once, under new campaign IDs.
        later = await post(api, slug, key, {"kind": "text", "fields": {
            "title": "After the move", "text": "New season boots"}})
        assert later["id"] > max(first["id"], coupon["id"])
        await buyer.wait_for_message(channel, lambda e: "New season boots" in body(e))
        await asyncio.sleep(3)  # time for a second copy to show up, if one were sent
        assert len(posts(await buyer.messages(channel), shop, "New season boots")) == 1
        status, detail = await api.call("GET", f"/shops/{slug}/campaigns/{later['id']}", key)
        assert detail["state"] == "sent" and len(detail["deliveries"]) == 1, detail
        conversation = await buyer.messages(dm)
        assert len([e for e in conversation if "Your code" in body(e)]) == 1, \
            "claiming again must not send the code twice"

    # -- going back: the old mercato.yaml brings the network back as it was on SQLite ---------
    backups[0].replace(config_path)
    with network_running(config_path, profile="single", log_name="rollback.out") as rolled_back:
        assert rolled_back.config.synapse.database == "sqlite"
        history = await buyer.messages(channel)
        assert len(posts(history, shop, "The last voucher")) == 1
        assert posts(history, shop, "New season boots") == [], \
            "what happened after the move is only on PostgreSQL"
        status, stats = await Api(rolled_back, http).call("GET", f"/shops/{slug}/stats", key)
        assert status == 200 and stats["followers"] == 1, stats
