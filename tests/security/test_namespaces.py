"""Nobody but the commerce appservice can be a shop: the `@shop_*` / `#shop_*`
namespaces are exclusive, anchored, and checked by Synapse itself.

An attacker with an ordinary account (registration is open on this network) tries
to register a shop's user ID before the shop exists, to take a shop's channel
alias, and to slip past the namespace regexes with look-alike IDs.
tests/unit/test_render.py checks the rendered regexes; here the running Synapse
refuses, and Synapse's own matcher is fed a corpus of bypass attempts.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from synapse.config.appservice import load_appservices
from synapse.util.stringutils import parse_and_validate_server_name

from appservices.commerce.service import CommerceAppService
from mercato.matrix.admin import HomeserverAdminError, register_user
from mercato_ops.render import RenderedPaths
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient, MatrixError

PASSWORD = "correct horse battery"


async def _register(http, hs_url: str, username: str) -> tuple[int, dict[str, Any]]:
    """Open registration as any client does it (the dummy auth flow)."""
    async with http.post(f"{hs_url}/_matrix/client/v3/register", json={
            "username": username, "password": PASSWORD,
            "auth": {"type": "m.login.dummy"}}) as resp:
        return resp.status, await resp.json()


async def _attacker(network: RunningNetwork, http) -> MatrixClient:
    username = f"mallory{uuid.uuid4().hex[:8]}"
    status, body = await _register(http, network.hs_url, username)
    assert status == 200, body
    client = MatrixClient(http, network.hs_url)
    client.user_id, client.token = body["user_id"], body["access_token"]
    return client


REFUSED_ODD = {"M_EXCLUSIVE", "M_INVALID_USERNAME", "M_UNKNOWN"}


@pytest.mark.parametrize(("username", "errcodes"), [
    ("shop_demo", {"M_EXCLUSIVE"}),            # an existing shop
    ("shop_not-yet-opened", {"M_EXCLUSIVE"}),  # a shop not opened yet: its future ID
    ("shop_x", {"M_EXCLUSIVE"}),
    ("mercato", {"M_EXCLUSIVE"}),              # the commerce bot
    ("contacts_alice", {"M_EXCLUSIVE"}),       # the contacts bridge's namespace
    ("contacts", {"M_EXCLUSIVE"}),
    # Odd spellings are refused too: folded to lower case and then reserved, or invalid.
    ("SHOP_x", REFUSED_ODD),
    ("shop_x\u200b", REFUSED_ODD),
    ("shop_x ", REFUSED_ODD),
])
async def test_ordinary_registration_cannot_take_an_appservice_id(
        open_network: RunningNetwork, http, username: str, errcodes: set[str]) -> None:
    async with http.get(f"{open_network.hs_url}/_matrix/client/v3/register/available",
                        params={"username": username}) as resp:
        available = await resp.json()
    status, body = await _register(http, open_network.hs_url, username)
    assert status == 400 and body.get("errcode") in errcodes, body
    assert available.get("errcode") in errcodes, available
    # Nor through the operator's shared-secret registration.
    with pytest.raises(HomeserverAdminError) as admin:
        await register_user(http, open_network.hs_url,
                            open_network.config.synapse.registration_shared_secret,
                            username, PASSWORD)
    assert any(code in str(admin.value) for code in errcodes), admin.value


async def test_names_that_only_look_close_are_ordinary_users(open_network: RunningNetwork,
                                                            http) -> None:
    """The control: the namespace is exactly the prefix, not everything near it."""
    for username in (f"xshop_{uuid.uuid4().hex[:6]}", f"shopper{uuid.uuid4().hex[:6]}"):
        status, body = await _register(http, open_network.hs_url, username)
        assert status == 200, body


async def test_no_squatter_user_appears_by_invitation(open_network: RunningNetwork,
                                                      http) -> None:
    """Inviting a shop ID that no approved shop has does not make it exist."""
    mallory = await _attacker(open_network, http)
    ghost = f"@shop_ghost{uuid.uuid4().hex[:6]}:localhost"
    room_id = (await mallory.request("POST", "/_matrix/client/v3/createRoom",
                                     {"preset": "private_chat"}))["room_id"]
    try:
        await mallory.request("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/invite",
                              {"user_id": ghost})
    except MatrixError:
        pass  # refusing the invite is fine too
    with pytest.raises(MatrixError) as missing:
        await mallory.request("GET", f"/_matrix/client/v3/profile/{quote(ghost)}")
    assert missing.value.status == 404


@pytest.mark.parametrize(("localpart", "errcodes"), [
    ("shop_x", {"M_EXCLUSIVE"}),
    ("shop_not-yet-opened", {"M_EXCLUSIVE"}),
    # Taken aliases: Synapse may say so before it says they are reserved.
    ("shop_demo", {"M_EXCLUSIVE", "M_ROOM_IN_USE"}),
    ("shop_directory", {"M_EXCLUSIVE", "M_ROOM_IN_USE"}),
])
async def test_ordinary_users_cannot_take_a_shop_alias(open_network: RunningNetwork, http,
                                                       localpart: str,
                                                       errcodes: set[str]) -> None:
    mallory = await _attacker(open_network, http)
    alias = f"#{localpart}:localhost"
    owner_before = await _alias_target(mallory, alias)
    with pytest.raises(MatrixError) as created:
        await mallory.request("POST", "/_matrix/client/v3/createRoom", {
            "preset": "public_chat", "room_alias_name": localpart, "name": "Totally the shop"})
    assert created.value.errcode in errcodes, created.value.body
    room_id = (await mallory.request("POST", "/_matrix/client/v3/createRoom",
                                     {"preset": "public_chat"}))["room_id"]
    with pytest.raises(MatrixError) as pointed:
        await mallory.request("PUT", f"/_matrix/client/v3/directory/room/{quote(alias)}",
                              {"room_id": room_id})
    assert pointed.value.errcode in errcodes, pointed.value.body
    with pytest.raises(MatrixError):
        await mallory.request("DELETE", f"/_matrix/client/v3/directory/room/{quote(alias)}")
    assert await _alias_target(mallory, alias) == owner_before
    # Nor can they list a room of theirs in the directory, where shops are listed.
    with pytest.raises(MatrixError) as listed:
        await mallory.request("PUT", f"/_matrix/client/v3/directory/list/room/"
                                     f"{quote(room_id)}", {"visibility": "public"})
    assert listed.value.status == 403


async def _alias_target(client: MatrixClient, alias: str) -> str | None:
    try:
        return await client.resolve_alias(alias)
    except MatrixError as e:
        assert e.status == 404
        return None


@pytest.mark.parametrize("localpart", ["shop_Demo", "shop_DEMO"])
async def test_look_alike_shop_aliases_are_refused_too(open_network: RunningNetwork, http,
                                                       localpart: str) -> None:
    mallory = await _attacker(open_network, http)
    room_id = (await mallory.request("POST", "/_matrix/client/v3/createRoom",
                                     {"preset": "public_chat"}))["room_id"]
    with pytest.raises(MatrixError) as pointed:
        await mallory.request("PUT", "/_matrix/client/v3/directory/room/"
                                     f"{quote(f'#{localpart}:localhost')}",
                              {"room_id": room_id})
    assert pointed.value.errcode == "M_EXCLUSIVE", pointed.value.body


def _services(network: RunningNetwork) -> dict[str, Any]:
    """The running network's registrations, parsed by Synapse's own code."""
    paths = RenderedPaths.for_config(network.config)
    return {service.id: service for service in load_appservices(
        network.config.server_name,
        [str(paths.commerce_registration), str(paths.contacts_registration)])}


OURS = ["@shop_demo:localhost", "@shop_x:localhost", "@shop_a.b-c=d/e+f:localhost",
        "@mercato:localhost"]
NOT_OURS = [
    "@shop_x:evil.example",             # the same localpart on another server
    "@shop_x:localhost.evil.example",   # our name as a prefix of theirs
    "@shop_x:evil.example/localhost",
    "@shop_x:evillocalhost",
    "@shop_x:localhost:8448",           # another port is another server
    "@shop_x:evil.example:localhost",
    "@evil:localhost/@shop_x:localhost",
    "@xshop_x:localhost",
    "@shop_:localhost",                 # no slug
    "@shop:localhost",
    "@Shop_x:localhost",
    "@shop_x@evil.example:localhost",
    "@shop_x:localhost@evil.example",
    "@shop_x\u200b:localhost",          # an invisible character
    "@ｓhop_x:localhost",                # a full-width look-alike
    "@mercato:evil.example",
    "@mercatox:localhost",
    " @shop_x:localhost",
]
OUR_ALIASES = ["#shop_demo:localhost", "#shop_x:localhost"]
NOT_OUR_ALIASES = ["#shop_x:evil.example", "#shop_x:localhost.evil.example",
                   "#xshop_x:localhost", "@shop_x:localhost", "!shop_x:localhost",
                   "#shop_x:localhost:8448"]


def test_synapse_matcher_claims_only_our_own_ids(open_network: RunningNetwork) -> None:
    services = _services(open_network)
    commerce, contacts = services["mercato-commerce"], services["mercato-contacts"]
    for user_id in OURS:
        assert commerce.is_exclusive_user(user_id), user_id
        assert not contacts.is_interested_in_user(user_id), user_id
    for user_id in NOT_OURS:
        assert not commerce.is_interested_in_user(user_id), user_id
        assert not commerce.is_exclusive_user(user_id), user_id
    for alias in OUR_ALIASES:
        assert commerce.is_exclusive_alias(alias), alias
    for alias in NOT_OUR_ALIASES:
        assert not commerce.is_exclusive_alias(alias), alias


def test_commerce_treats_only_its_own_ids_as_shops(open_network: RunningNetwork) -> None:
    """The appservice's own test of "is this a shop" agrees with the namespace."""
    service = SimpleNamespace(config=open_network.config)
    for user_id in OURS[:3]:
        assert CommerceAppService.is_shop_user(service, user_id), user_id  # type: ignore[arg-type]
    for user_id in NOT_OURS:
        try:
            parse_and_validate_server_name(user_id.split(":", 1)[1])
        except ValueError:
            continue  # not a user ID any server could send
        if user_id.startswith("@shop_") and user_id.endswith(":localhost"):
            continue  # our server, our prefix: refused at registration (above) instead
        assert not CommerceAppService.is_shop_user(service, user_id), user_id  # type: ignore[arg-type]
