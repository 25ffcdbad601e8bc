"""The bridge as a Matrix identity service, as a client uses it against a real Synapse:
register with an OpenID token, hash with the pepper, look someone up before and after
they opt in, and be refused an enumeration-sized lookup."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any
from urllib.parse import quote

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import (
    become_findable,
    command,
    open_bridge_dm,
    unique_number,
)
from tests.verification_sinks import MailSink, SmsGateway


def spec_hash(address: str, medium: str, pepper: str) -> str:
    """Written out here from the spec, independently of the bridge's own code."""
    digest = hashlib.sha256(f"{address} {medium} {pepper}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class IdentityClient:
    def __init__(self, http: aiohttp.ClientSession, network: RunningNetwork) -> None:
        self.http = http
        self.base = f"http://127.0.0.1:{network.config.contacts.port}/_matrix/identity/v2"
        self.token = ""

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.request(method, self.base + path, json=body,
                                     headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def register(self, user: MatrixClient) -> None:
        openid = await user.request(
            "POST", f"/_matrix/client/v3/user/{quote(user.user_id)}/openid/request_token", {})
        status, body = await self.call("POST", "/account/register", openid)
        assert status == 200, body
        self.token = body["token"]


async def test_lookup_finds_a_user_only_after_opt_in(
        network: RunningNetwork, http: aiohttp.ClientSession,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    seeker = await new_user(network, http, "seeker")
    target = await new_user(network, http, "target")
    identity = IdentityClient(http, network)
    assert await identity.call("GET", "") == (200, {})
    assert await identity.call("GET", "/terms") == (200, {"policies": {}})
    status, _ = await identity.call("GET", "/hash_details")
    assert status == 401
    await identity.register(seeker)
    assert await identity.call("GET", "/account") == (200, {"user_id": seeker.user_id})
    status, details = await identity.call("GET", "/hash_details")
    assert status == 200 and details["algorithms"] == ["sha256"]
    pepper = details["lookup_pepper"]

    email = f"Target.{uuid.uuid4().hex[:8]}@Example.org"
    e164, raw = unique_number("9")
    hashes = [spec_hash(email.lower(), "email", pepper),
              spec_hash(e164.removeprefix("+"), "msisdn", pepper)]
    lookup = {"addresses": hashes, "algorithm": "sha256", "pepper": pepper}
    assert await identity.call("POST", "/lookup", lookup) == (200, {"mappings": {}})

    room_id = await open_bridge_dm(target, network)
    reply = await command(target, network, room_id, f"findable email {email}")
    assert "I sent an email" in reply["content"]["body"]
    # Asked for, not yet verified: not found.
    assert await identity.call("POST", "/lookup", lookup) == (200, {"mappings": {}})
    code = await code_sinks[1].code_for(email.lower())
    reply = await command(target, network, room_id, f"verify {code}")
    assert "can now find you" in reply["content"]["body"]
    reply = await become_findable(target, network, room_id, code_sinks,
                                  f"findable phone {raw}", e164)
    assert "can now find you" in reply["content"]["body"]
    status, found = await identity.call("POST", "/lookup", lookup)
    assert status == 200
    assert found == {"mappings": {hashes[0]: target.user_id, hashes[1]: target.user_id}}

    # A stale pepper is answered with the current one, as the spec says.
    status, body = await identity.call("POST", "/lookup", {**lookup, "pepper": "old"})
    assert (status, body["errcode"], body["lookup_pepper"]) == (400, "M_INVALID_PEPPER", pepper)

    reply = await command(target, network, room_id, "findable off")
    assert "forgot 2" in reply["content"]["body"]
    assert await identity.call("POST", "/lookup", lookup) == (200, {"mappings": {}})
    assert (await identity.call("POST", "/account/logout", {}))[0] == 200
    assert (await identity.call("GET", "/account"))[0] == 401


async def test_an_enumeration_sized_lookup_is_refused(network: RunningNetwork,
                                                      http: aiohttp.ClientSession) -> None:
    seeker = await new_user(network, http, "enumerator")
    identity = IdentityClient(http, network)
    await identity.register(seeker)
    _, details = await identity.call("GET", "/hash_details")
    pepper = details["lookup_pepper"]
    limit = network.config.contacts.max_identifiers_per_import
    sweep = [spec_hash(f"474{i:07d}", "msisdn", pepper) for i in range(limit + 1)]
    status, body = await identity.call("POST", "/lookup", {
        "addresses": sweep, "algorithm": "sha256", "pepper": pepper})
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    assert "enumeration" in body["error"]
    # An address book's worth still passes.
    status, body = await identity.call("POST", "/lookup", {
        "addresses": sweep[:5_000], "algorithm": "sha256", "pepper": pepper})
    assert status == 200
    logs = (network.config.data_path / "logs" / "contacts.out").read_text(errors="replace")
    assert "lookup.refused" in logs and seeker.user_id in logs


async def test_an_openid_token_its_server_did_not_issue_is_refused(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    identity = IdentityClient(http, network)
    status, body = await identity.call("POST", "/account/register", {
        "access_token": "made-up", "token_type": "Bearer",
        "matrix_server_name": network.config.server_name, "expires_in": 3600})
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    # A server name that leads nowhere public is not called at all.
    status, body = await identity.call("POST", "/account/register", {
        "access_token": "made-up", "token_type": "Bearer",
        "matrix_server_name": "elsewhere.example", "expires_in": 3600})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert "public internet" in body["error"]
