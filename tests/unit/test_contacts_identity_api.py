"""The identity-service API and the service API over HTTP, with a stand-in homeserver.

The real homeserver's OpenID check is in tests/integration/test_contacts_identity.py;
here: what a client gets for every kind of wrong request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridges.contacts.api import ApiContext, add_api_routes
from bridges.contacts.db.upgrade import upgrade_table
from bridges.contacts.discovery import Discovery
from bridges.contacts.hashing import IdentifierHasher, lookup_hash
from bridges.contacts.importers import Medium
from bridges.contacts.policy import Limits
from mercato.config import MercatoConfig, parse_config
from mercato.db import open_database

PEPPER = "matrixrocks"
OLA = "@ola:localhost"
CONFIG = web.AppKey("config", MercatoConfig)


@pytest.fixture
async def homeserver() -> AsyncIterator[TestServer]:
    """Answers OpenID userinfo for one token, as Synapse's federation API does."""
    async def userinfo(request: web.Request) -> web.Response:
        if request.query.get("access_token") == "good-openid-token":
            return web.json_response({"sub": OLA})
        return web.json_response({"errcode": "M_UNKNOWN_TOKEN", "error": "?"}, status=401)

    app = web.Application()
    app.router.add_get("/_matrix/federation/v1/openid/userinfo", userinfo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def client(tmp_path: Path, homeserver: TestServer) -> AsyncIterator[TestClient]:
    config = parse_config({
        "synapse": {"port": homeserver.port},
        "contacts": {"lookup_pepper": PEPPER, "max_identifiers_per_import": 50,
                     "lookups_per_user_per_day": 80, "lookups_per_ip_per_day": 1000},
    }, base_dir=tmp_path)
    db = open_database(f"sqlite:{tmp_path / 'contacts.db'}", upgrade_table, "contacts")
    await db.start()
    hasher = IdentifierHasher(config.contacts.hmac_secret, PEPPER)
    discovery = Discovery(db, hasher, Limits.of(config.contacts))
    await discovery.opt_in("@kari:localhost", Medium.EMAIL, "kari@example.no")
    session = aiohttp.ClientSession()
    app = web.Application()
    add_api_routes(app, ApiContext(db, discovery, config, lambda: session))
    app[CONFIG] = config
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await session.close()
    await db.stop()


async def register(client: TestClient) -> dict[str, str]:
    resp = await client.post("/_matrix/identity/v2/account/register", json={
        "access_token": "good-openid-token", "token_type": "Bearer",
        "matrix_server_name": "localhost", "expires_in": 3600})
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_status_and_terms_need_no_token(client: TestClient) -> None:
    assert await (await client.get("/_matrix/identity/v2")).json() == {}
    assert await (await client.get("/_matrix/identity/v2/terms")).json() == {"policies": {}}


async def test_register_account_lookup_logout(client: TestClient) -> None:
    auth = await register(client)
    assert await (await client.get("/_matrix/identity/v2/account", headers=auth)).json() == {
        "user_id": OLA}
    details = await (await client.get("/_matrix/identity/v2/hash_details",
                                      headers=auth)).json()
    assert details == {"algorithms": ["sha256"], "lookup_pepper": PEPPER}
    kari = lookup_hash("kari@example.no", "email", PEPPER)
    nobody = lookup_hash("nobody@example.no", "email", PEPPER)
    resp = await client.post("/_matrix/identity/v2/lookup", headers=auth, json={
        "addresses": [kari, nobody], "algorithm": "sha256", "pepper": PEPPER})
    assert await resp.json() == {"mappings": {kari: "@kari:localhost"}}
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await client.post("/_matrix/identity/v2/terms", headers=auth, json={
        "user_accepts": []})
    assert resp.status == 200
    assert (await client.post("/_matrix/identity/v2/account/logout", headers=auth)).status == 200
    resp = await client.get("/_matrix/identity/v2/account", headers=auth)
    assert (resp.status, (await resp.json())["errcode"]) == (401, "M_UNKNOWN_TOKEN")


@pytest.mark.parametrize("body, status, errcode", [
    ({"access_token": "bad-token", "matrix_server_name": "localhost"}, 401, "M_UNKNOWN_TOKEN"),
    ({"access_token": "good-openid-token", "matrix_server_name": "other.example"}, 403,
     "M_FORBIDDEN"),
    ({"matrix_server_name": "localhost"}, 400, "M_BAD_JSON"),
])
async def test_register_refusals(client: TestClient, body: dict[str, str], status: int,
                                 errcode: str) -> None:
    resp = await client.post("/_matrix/identity/v2/account/register", json=body)
    assert (resp.status, (await resp.json())["errcode"]) == (status, errcode)


async def test_lookups_without_a_token(client: TestClient) -> None:
    resp = await client.post("/_matrix/identity/v2/lookup", json={})
    assert (resp.status, (await resp.json())["errcode"]) == (401, "M_UNAUTHORIZED")
    resp = await client.get("/_matrix/identity/v2/hash_details",
                            headers={"Authorization": "Bearer made-up"})
    assert (resp.status, (await resp.json())["errcode"]) == (401, "M_UNKNOWN_TOKEN")


async def test_wrong_lookups(client: TestClient) -> None:
    auth = await register(client)
    resp = await client.post("/_matrix/identity/v2/lookup", headers=auth, json={
        "addresses": ["x"], "algorithm": "sha256", "pepper": "stale"})
    body = await resp.json()
    assert (resp.status, body["errcode"]) == (400, "M_INVALID_PEPPER")
    assert (body["algorithm"], body["lookup_pepper"]) == ("sha256", PEPPER)
    resp = await client.post("/_matrix/identity/v2/lookup", headers=auth, json={
        "addresses": ["kari@example.no email"], "algorithm": "none", "pepper": PEPPER})
    assert (resp.status, (await resp.json())["errcode"]) == (400, "M_INVALID_PARAM")
    resp = await client.post("/_matrix/identity/v2/lookup", headers=auth, data=b"{nope")
    assert (resp.status, (await resp.json())["errcode"]) == (400, "M_NOT_JSON")
    resp = await client.post("/_matrix/identity/v2/lookup", headers=auth, json={
        "addresses": [1, 2], "algorithm": "sha256", "pepper": PEPPER})
    assert resp.status == 400


async def test_enumeration_and_quota(client: TestClient) -> None:
    auth = await register(client)

    def addresses(n: int, start: int = 0) -> list[str]:
        return [lookup_hash(f"47412{i:05d}", "msisdn", PEPPER) for i in range(start, start + n)]

    resp = await client.post("/_matrix/identity/v2/lookup", headers=auth, json={
        "addresses": addresses(51), "algorithm": "sha256", "pepper": PEPPER})
    assert (resp.status, (await resp.json())["errcode"]) == (413, "M_TOO_LARGE")
    for start in (0, 40):
        resp = await client.post("/_matrix/identity/v2/lookup", headers=auth, json={
            "addresses": addresses(40, start), "algorithm": "sha256", "pepper": PEPPER})
        assert resp.status == 200
    resp = await client.post("/_matrix/identity/v2/lookup", headers=auth, json={
        "addresses": addresses(1, 80), "algorithm": "sha256", "pepper": PEPPER})
    body = await resp.json()
    assert (resp.status, body["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert body["retry_after_ms"] > 0


async def test_cors_preflight(client: TestClient) -> None:
    resp = await client.options("/_matrix/identity/v2/lookup")
    assert resp.status == 200
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


async def test_unknown_paths_methods_and_sizes_are_answered_in_words_with_cors(
        client: TestClient) -> None:
    resp = await client.get("/_matrix/identity/v2/nowhere")
    assert (resp.status, await resp.json()) == (404, {
        "errcode": "M_UNRECOGNIZED", "error": "There is no /_matrix/identity/v2/nowhere here."})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await client.delete("/_matrix/identity/v2/lookup")
    assert (resp.status, await resp.json()) == (405, {
        "errcode": "M_UNRECOGNIZED", "error": "DELETE is not allowed here; use POST."})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await client.post("/_mercato/contacts/v1/lookup", data=b" " * (4 * 1024 * 1024 + 1))
    assert (resp.status, await resp.json()) == (413, {
        "errcode": "M_TOO_LARGE", "error": "Request body over 4096 KiB; send less at a time."})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_service_api_needs_the_as_token(client: TestClient) -> None:
    config = client.app[CONFIG]
    resp = await client.get("/_mercato/contacts/v1/stats",
                            headers={"Authorization": "Bearer nope"})
    assert (resp.status, (await resp.json())["errcode"]) == (403, "M_FORBIDDEN")
    auth = {"Authorization": f"Bearer {config.contacts.as_token}"}
    details = await (await client.get("/_mercato/contacts/v1/hash_details?user_id=@me:localhost",
                                      headers=auth)).json()
    assert details["lookup_pepper"] == PEPPER and details["max_identifiers"] == 50
    kari = lookup_hash("kari@example.no", "email", PEPPER)
    resp = await client.post("/_mercato/contacts/v1/lookup", headers=auth, json={
        "user_id": "@me:localhost", "addresses": [kari], "pepper": PEPPER})
    assert await resp.json() == {"mappings": {kari: "@kari:localhost"}}
    resp = await client.post("/_mercato/contacts/v1/lookup", headers=auth, json={
        "user_id": "me", "addresses": [kari], "pepper": PEPPER})
    assert resp.status == 400
    # An unknown source is refused, not counted as "cli".
    for source in ("web", ["cli"], 1):
        resp = await client.post("/_mercato/contacts/v1/lookup", headers=auth, json={
            "user_id": "@me:localhost", "addresses": [kari], "pepper": PEPPER,
            "source": source})
        assert (resp.status, (await resp.json())["error"]) == (
            400, "'source' must be \"cli\" or \"script\" (or left out, for \"cli\").")
    stats = await (await client.get("/_mercato/contacts/v1/stats", headers=auth)).json()
    assert stats["findable_users"] == 1 and stats["imports"]["cli"]["matched"] == 1
