"""The appservice HTTP side as Synapse (or an attacker) reaches it."""

from __future__ import annotations

import re
import uuid

from mercato_ops.testnet import RunningNetwork


def _txn_rows(network: RunningNetwork, txn_id: str) -> tuple[int, int]:
    txns = network.rows("commerce", "SELECT COUNT(*) FROM as_transaction WHERE txn_id=?",
                        txn_id)[0][0]
    events = network.rows("commerce", "SELECT COUNT(*) FROM as_inbox WHERE txn_id=?",
                          txn_id)[0][0]
    return txns, events


def _event(room_id: str) -> dict:
    return {"type": "m.room.message", "room_id": room_id, "sender": "@someone:localhost",
            "event_id": f"$test-{uuid.uuid4().hex}", "origin_server_ts": 1,
            "content": {"msgtype": "m.text", "body": "hello"}}


async def test_wrong_or_missing_hs_token_is_refused(network: RunningNetwork, http) -> None:
    url = f"{network.commerce_url}/_matrix/app/v1/transactions/attack-1"
    body = {"events": [_event("!room:localhost")]}
    async with http.put(url, json=body) as resp:
        assert resp.status == 401
        assert (await resp.json())["errcode"] == "M_UNAUTHORIZED"
    async with http.put(url, json=body, headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 403
        assert (await resp.json())["errcode"] == "M_FORBIDDEN"
    # The legacy query-string token is not accepted, even when it is right.
    async with http.put(url, json=body,
                        params={"access_token": network.config.commerce.hs_token}) as resp:
        assert resp.status == 401
    assert _txn_rows(network, "attack-1") == (0, 0), "a refused transaction wrote rows"


async def test_transaction_stored_once_even_when_resent(network: RunningNetwork, http) -> None:
    headers = {"Authorization": f"Bearer {network.config.commerce.hs_token}"}
    txn_id = f"txn-{uuid.uuid4().hex}"
    url = f"{network.commerce_url}/_matrix/app/v1/transactions/{txn_id}"
    body = {"events": [_event("!a:localhost"), _event("!b:localhost")]}
    for _ in range(2):
        async with http.put(url, json=body, headers=headers) as resp:
            assert resp.status == 200
            assert await resp.json() == {}
    assert _txn_rows(network, txn_id) == (1, 2)
    # The same event inside another transaction (Synapse retrying) is not stored twice.
    txn2 = f"txn-{uuid.uuid4().hex}"
    async with http.put(f"{network.commerce_url}/_matrix/app/v1/transactions/{txn2}",
                        json=body, headers=headers) as resp:
        assert resp.status == 200
    assert _txn_rows(network, txn2) == (1, 0)


async def test_bad_transaction_body_gets_clear_error(network: RunningNetwork, http) -> None:
    headers = {"Authorization": f"Bearer {network.config.commerce.hs_token}",
               "Content-Type": "application/json"}
    url = f"{network.commerce_url}/_matrix/app/v1/transactions/bad-1"
    async with http.put(url, data=b"{not json", headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["errcode"] == "M_NOT_JSON"
    async with http.put(url, json={"events": "nope"}, headers=headers) as resp:
        assert resp.status == 400
        assert "'events' list" in (await resp.json())["error"]
    assert _txn_rows(network, "bad-1") == (0, 0)


async def test_user_query_does_not_create_shops(network: RunningNetwork, http) -> None:
    headers = {"Authorization": f"Bearer {network.config.commerce.hs_token}"}
    url = f"{network.commerce_url}/_matrix/app/v1/users/@shop_squatter:localhost"
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 404


async def test_every_component_has_health_and_metrics(network: RunningNetwork, http) -> None:
    ports = {"commerce": network.config.commerce.port, "contacts": network.config.contacts.port,
             "shopbot": network.config.shopbot.port}
    for component, port in ports.items():
        async with http.get(f"http://127.0.0.1:{port}/health") as resp:
            assert resp.status == 200
            assert await resp.json() == {"component": component, "status": "ok"}
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
            assert "python_info" in text
    async with http.get(f"http://127.0.0.1:{ports['commerce']}/metrics") as resp:
        assert 'mercato_as_transactions_total{component="commerce",outcome="stored"}' in \
            await resp.text()
    async with http.get(f"{network.hs_url}/health") as resp:
        assert resp.status == 200


def test_admin_status_reports_every_component(network: RunningNetwork) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "mercato_ops", "--config", str(network.config_path),
         "admin", "status"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for component in ("synapse", "commerce", "contacts", "shopbot"):
        assert re.search(rf"{component}\s+│\s+up", result.stdout), result.stdout
