"""A user of another homeserver and Mercato's contacts bridge: not found by anyone until
they opt in (over federation, with a code the bridge sends them), then found by a vCard
import and an identity-service lookup, and given a chat with the person who found them."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from mercato.matrix.admin import register_user
from mercato_ops.testnet import RunningNetwork
from tests.federation.conftest import RemoteHomeserver, remote_user
from tests.federation.test_remote_buyer import join_with_retry
from tests.integration.client import MatrixClient
from tests.integration.test_contacts_bridge import (
    _reply_to,
    become_findable,
    command,
    open_bridge_dm,
    react,
    send_file,
    unique_number,
    vcard,
)
from tests.integration.test_contacts_identity import IdentityClient, spec_hash
from tests.integration.test_contacts_space import invites, members
from tests.verification_sinks import MailSink, SmsGateway


async def local_user(network: RunningNetwork, http: aiohttp.ClientSession,
                     localpart: str) -> MatrixClient:
    await register_user(http, network.hs_url,
                        network.config.synapse.registration_shared_secret, localpart,
                        "near password 1")
    return await MatrixClient(http, network.hs_url).login(
        f"@{localpart}:{network.config.server_name}", "near password 1")


async def lookup(identity: IdentityClient, hashes: list[str]) -> dict[str, str]:
    status, details = await identity.call("GET", "/hash_details")
    assert status == 200, details
    status, found = await identity.call("POST", "/lookup", {
        "addresses": hashes, "algorithm": "sha256", "pepper": details["lookup_pepper"]})
    assert status == 200, found
    return found["mappings"]


async def test_a_remote_user_is_found_only_after_opting_in(
        mercato_hs: RunningNetwork, remote_hs: RemoteHomeserver, http: aiohttp.ClientSession,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    server = mercato_hs.config.server_name
    bot = mercato_hs.config.user_id(mercato_hs.config.contacts.bot_localpart)
    assert bot.endswith(f":{server}")
    _sms, mail = code_sinks
    near = await local_user(mercato_hs, http, f"near{uuid.uuid4().hex[:6]}")
    far = await remote_user(remote_hs, http, f"far{uuid.uuid4().hex[:6]}")
    assert far.user_id.endswith(f":{remote_hs.server_name}")
    email = f"far.{uuid.uuid4().hex[:8]}@example.org"
    e164, typed = unique_number("4")
    book = vcard([("Far Friend", typed, email)])
    identity = IdentityClient(http, mercato_hs)
    await identity.register(near)
    _, details = await identity.call("GET", "/hash_details")
    pepper = details["lookup_pepper"]
    email_hash = spec_hash(email, "email", pepper)
    phone_hash = spec_hash(e164.removeprefix("+"), "msisdn", pepper)

    # Before the remote user opts in, neither an import nor a lookup finds them.
    near_room = await open_bridge_dm(near, mercato_hs)
    answer = await send_file(near, mercato_hs, near_room, book, "friends.vcf", "text/vcard")
    assert "I read 1 contact" in answer["content"]["body"]
    assert far.user_id not in answer["content"]["body"]
    assert "None of them is on Mercato yet" in answer["content"]["body"]
    assert await lookup(identity, [email_hash, phone_hash]) == {}

    # The remote user talks to the bridge bot across federation and opts in by email: the
    # code comes by mail, and the answers come back over federation.
    far_room = await open_bridge_dm(far, mercato_hs)
    asked = await far.send_text(far_room, f"findable email {email}")
    reply = await far.wait_for_message(far_room, _reply_to(asked, bot), timeout=60)
    assert "I sent an email" in reply["content"]["body"], reply["content"]["body"]
    assert email not in reply["content"]["body"]
    # The message holding the address is taken out of the chat, on the remote server too.
    await far.wait_for_message(far_room, lambda e: e["event_id"] == asked
                               and not e.get("content")
                               and "redacted_because" in e.get("unsigned", {}), timeout=60)
    code = await mail.code_for(email)
    reply = await command(far, mercato_hs, far_room, f"verify {code}")
    assert "can now find you" in reply["content"]["body"], reply["content"]["body"]

    # Now the import lists them by their full Matrix ID on their own server, and the
    # lookup maps the verified address (only it: the number was never verified).
    answer = await send_file(near, mercato_hs, near_room, book, "friends2.vcf", "text/vcard")
    body = answer["content"]["body"]
    assert f"• {far.user_id} — your contact “Far Friend”" in body, body
    assert await lookup(identity, [email_hash, phone_hash]) == {email_hash: far.user_id}

    # ✅ under the summary opens a chat both are invited to, across the two servers.
    await near.wait_for_message(near_room, lambda e: e["type"] == "m.reaction"
                                and e["sender"] == bot
                                and e["content"]["m.relates_to"]["event_id"]
                                == answer["event_id"], timeout=60)
    await near.sync()  # invitations from here on are the bridge's new ones
    await react(near, near_room, answer["event_id"], "✅")
    opened = await near.wait_for_message(near_room, _reply_to(answer["event_id"], bot),
                                         timeout=60)
    assert "I opened a chat with each" in opened["content"]["body"], opened["content"]["body"]
    far_invites = await invites(far, 1)
    assert len(far_invites) == 1
    chat, stripped = far_invites.popitem()
    assert any(e["type"] == "m.room.member" and e["state_key"] == far.user_id
               and e["content"].get("is_direct") for e in stripped)
    near_invites = await invites(near, 2)  # the chat and the Contacts space
    assert chat in near_invites

    # The remote user joins first; the local user then accepts the invitation as any
    # client does (naming no server), and only then does the bot leave them to it.
    await join_with_retry(far, chat, server)
    await near.join(chat)
    deadline = time.monotonic() + 30
    while (await members(near, chat)).get(bot) != "leave" and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    assert await members(near, chat) == {near.user_id: "join", far.user_id: "join",
                                         bot: "leave"}
    await far.send_text(chat, "Hei fra den andre serveren!")
    hello = await near.wait_for_message(chat, lambda e: e.get("sender") == far.user_id
                                        and e["type"] == "m.room.message", timeout=60)
    assert hello["content"]["body"] == "Hei fra den andre serveren!"


async def test_a_remote_user_finds_local_people_with_their_address_book(
        mercato_hs: RunningNetwork, remote_hs: RemoteHomeserver, http: aiohttp.ClientSession,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    near = await local_user(mercato_hs, http, f"found{uuid.uuid4().hex[:6]}")
    far = await remote_user(remote_hs, http, f"seeker{uuid.uuid4().hex[:6]}")
    server_quota = f"server:{remote_hs.server_name}"
    used_before = (await asyncio.to_thread(_quota_rows, mercato_hs, remote_hs.server_name)
                   ).get(server_quota, 0)
    email = f"near.{uuid.uuid4().hex[:8]}@example.org"
    near_room = await open_bridge_dm(near, mercato_hs)
    reply = await become_findable(near, mercato_hs, near_room, code_sinks,
                                  f"findable email {email}", email)
    assert "can now find you" in reply["content"]["body"]

    # The file is uploaded to the remote server; the bridge fetches it over federation.
    far_room = await open_bridge_dm(far, mercato_hs)
    book = f"name,phone,email\nNear Friend,,{email}\n".encode()
    answer = await send_file(far, mercato_hs, far_room, book, "book.csv", "text/csv")
    assert f"• {near.user_id} — your contact “Near Friend”" in answer["content"]["body"], \
        answer["content"]["body"]

    # The same through the identity-service API: the remote user registers with an
    # OpenID token of their own homeserver, which the bridge checks over federation.
    identity = IdentityClient(http, mercato_hs)
    await identity.register(far)
    status, account = await identity.call("GET", "/account")
    assert (status, account["user_id"]) == (200, far.user_id)
    _, details = await identity.call("GET", "/hash_details")
    hashed = spec_hash(email, "email", details["lookup_pepper"])
    assert await lookup(identity, [hashed]) == {hashed: near.user_id}
    # The import and the lookup: charged to the user, and to their homeserver's quota.
    used = await asyncio.to_thread(_quota_rows, mercato_hs, remote_hs.server_name)
    assert used[f"user:{far.user_id}"] == 2 and used[server_quota] == used_before + 2, used
    # A token the remote server never issued is refused.
    status, body = await identity.call("POST", "/account/register", {
        "access_token": "made-up", "token_type": "Bearer",
        "matrix_server_name": remote_hs.server_name, "expires_in": 3600})
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")


def _quota_rows(network: RunningNetwork, remote: str) -> dict[str, int]:
    """What the bridge charged today, per subject, for the remote server and its users."""
    rows = network.rows(
        "contacts",
        "SELECT subject, SUM(used) FROM quota_use WHERE subject LIKE ? OR subject LIKE ?"
        " GROUP BY subject", f"user:%:{remote}", f"server:{remote}")
    return {subject: int(used) for subject, used in rows}
