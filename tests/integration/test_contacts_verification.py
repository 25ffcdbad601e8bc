"""Verified opt-ins against a real Synapse: an email the homeserver verified is findable at
once (once the operator made the bridge bot a server admin); otherwise the bridge mails a
code, and only the right code, typed in time, makes the address findable."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import aiohttp

from mercato.matrix.admin import register_user
from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import command, open_bridge_dm, send_file
from tests.verification_sinks import MailSink, SmsGateway


async def server_admin(network: RunningNetwork, http: aiohttp.ClientSession) -> MatrixClient:
    localpart = f"operator{uuid.uuid4().hex[:8]}"
    await register_user(http, network.hs_url, network.config.synapse.registration_shared_secret,
                        localpart, "correct horse battery", admin=True)
    return await MatrixClient(http, network.hs_url).login(f"@{localpart}:localhost",
                                                          "correct horse battery")


def found_in(answer: dict, user_id: str) -> bool:
    return user_id in answer["content"]["body"]


async def test_an_email_the_homeserver_verified_is_findable_at_once(
        network: RunningNetwork, http: aiohttp.ClientSession,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    _sms, mail = code_sinks
    bot = network.config.user_id(network.config.contacts.bot_localpart)
    operator = await server_admin(network, http)
    user = await new_user(network, http, "hsverified")
    email = f"hs.{uuid.uuid4().hex[:8]}@example.org"
    # The operator adds the address to the account (Synapse marks it validated) and makes
    # the bridge bot a server admin, so the bridge may read accounts' verified addresses.
    await operator.request("PUT", f"/_synapse/admin/v2/users/{quote(user.user_id)}",
                           {"threepids": [{"medium": "email", "address": email}]})
    await operator.request("PUT", f"/_synapse/admin/v2/users/{quote(bot)}", {"admin": True})

    room_id = await open_bridge_dm(user, network)
    reply = await command(user, network, room_id, f"findable email {email.upper()}")
    assert "homeserver account lists it as verified" in reply["content"]["body"]
    assert mail.sent_to(email) == []  # no code needed

    importer = await new_user(network, http, "hsimporter")
    importer_room = await open_bridge_dm(importer, network)
    book = f"name,phone,email\nFriend,,{email}\n".encode()
    answer = await send_file(importer, network, importer_room, book, "book.csv", "text/csv")
    assert found_in(answer, user.user_id)


async def test_an_email_is_findable_only_after_the_mailed_code(
        network: RunningNetwork, http: aiohttp.ClientSession,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    _sms, mail = code_sinks
    user = await new_user(network, http, "mailverify")
    importer = await new_user(network, http, "mailimporter")
    email = f"code.{uuid.uuid4().hex[:8]}@example.org"
    book = f"name,phone,email\nFriend,,{email}\n".encode()
    importer_room = await open_bridge_dm(importer, network)

    room_id = await open_bridge_dm(user, network)
    reply = await command(user, network, room_id, f"findable email {email}")
    assert "I sent an email" in reply["content"]["body"]
    assert email not in reply["content"]["body"]
    code = await mail.code_for(email)
    answer = await send_file(importer, network, importer_room, book, "book.csv", "text/csv")
    assert not found_in(answer, user.user_id)  # asked for, not verified yet

    wrong = f"{(int(code) + 1) % 10**6:06d}"
    reply = await command(user, network, room_id, f"verify {wrong}")
    assert "not right" in reply["content"]["body"]
    reply = await command(user, network, room_id, f"verify {code}")
    assert "can now find you" in reply["content"]["body"]
    answer = await send_file(importer, network, importer_room, book, "book2.csv", "text/csv")
    assert found_in(answer, user.user_id)
    reply = await command(user, network, room_id, f"verify {code}")  # used up
    assert "no code waiting" in reply["content"]["body"]
