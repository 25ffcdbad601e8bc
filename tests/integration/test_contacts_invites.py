"""Invite links against a real Synapse: a user asks the bot for an invite naming a number,
the invite page serves, and when the invited person joins and opts in with that number
the inviter is told and both get a link to start their chat; the stats count it."""

from __future__ import annotations

import re

import aiohttp
import pytest

from mercato_ops.testnet import RunningNetwork
from tests.integration.shop_helpers import new_user
from tests.integration.test_contacts_bridge import (
    _phone_forms,
    assert_nowhere,
    become_findable,
    command,
    open_bridge_dm,
    unique_number,
)
from tests.integration.test_contacts_space import invites, is_space, members, space_children
from tests.verification_sinks import MailSink, SmsGateway


async def test_an_invite_link_leads_to_a_chat_when_the_invited_person_joins(
        network: RunningNetwork, http: aiohttp.ClientSession,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    bot = network.config.user_id(network.config.contacts.bot_localpart)
    inviter = await new_user(network, http, "inviter")
    e164, raw = unique_number("9")
    room_id = await open_bridge_dm(inviter, network)
    reply = await command(inviter, network, room_id, f"invite {raw}")
    body = reply["content"]["body"]
    found = re.search(r"(https?://\S+/invite/([A-Za-z0-9_-]+))", body)
    assert found, body
    assert e164[-6:] not in body
    code = found.group(2)

    base = f"http://127.0.0.1:{network.config.contacts.port}"
    async with http.get(f"{base}/invite/{code}", headers={"User-Agent": "Mozilla/5.0"}) as resp:
        page = await resp.text()
        assert resp.status == 200, page
    assert f"{inviter.user_id} invites you" in page and "<svg" in page
    assert f"https://matrix.to/#/{inviter.user_id}" in page

    # The invited person joins and opts in with the number they were invited at.
    newcomer = await new_user(network, http, "newcomer")
    new_room = await open_bridge_dm(newcomer, network)
    answer = await become_findable(newcomer, network, new_room, code_sinks,
                                   f"findable phone {raw}", e164)
    assert "You were invited here by" in answer["content"]["body"]
    assert f"https://matrix.to/#/{inviter.user_id}" in answer["content"]["body"]
    told = await inviter.wait_for_message(
        room_id, lambda e: e.get("sender") == bot and "has joined" in
        e.get("content", {}).get("body", ""), timeout=60)
    assert f"https://matrix.to/#/{newcomer.user_id}" in told["content"]["body"]
    # The bridge opened a chat between them and keeps it in the inviter's Contacts space.
    invited = await invites(inviter, 2)
    space_id = next(room for room, state in invited.items() if is_space(state))
    chat = next(room for room in invited if room != space_id)
    assert chat in told["content"]["body"]
    await inviter.join(space_id)
    assert await space_children(inviter, space_id) == {chat}
    await inviter.join(chat)
    assert (await members(inviter, chat))[newcomer.user_id] == "invite"

    token = network.config.contacts.as_token
    async with http.get(f"{base}/_mercato/contacts/v1/stats",
                        headers={"Authorization": f"Bearer {token}"}) as resp:
        stats = await resp.json()
    assert stats["invites"]["created"] >= 1 and stats["invites"]["converted"] >= 1
    assert stats["invites"]["opened"] >= 1
    assert 0 < stats["invites"]["conversion"] <= 1
    assert stats["chats"]["opened"] >= 1 and stats["chats"]["spaces"] >= 1
    # The same counts on /metrics, where the operator's Prometheus reads them.
    async with http.get(f"{base}/metrics") as resp:
        metrics = await resp.text()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
              if line.startswith("mercato_contacts_")}
    assert values["mercato_contacts_invites_created_total"] == stats["invites"]["created"]
    assert values["mercato_contacts_invites_joined_total"] == stats["invites"]["converted"]
    assert values["mercato_contacts_invite_conversion"] == pytest.approx(
        stats["invites"]["conversion"], abs=1e-3)
    assert values["mercato_contacts_chats_opened_total"] >= 1
    await assert_nowhere(network, _phone_forms(e164, raw))
