"""The shop bot is killed in the middle of a command and started again.

The bot saves its sync token only after a whole batch of events, so after a crash
it is handed the command again. Two places, each a fault point in bots/shopbot/bot.py
(exit 137, like SIGKILL), on a command that changes something each time it runs
(`keys create` makes a new API key):

- shopbot.before_reply: the API made the key, the answer was not sent. The bot must
  not make a second key; it answers once, saying the command may have been done.
- shopbot.after_reply: the answer was sent, neither the journal nor the sync token
  saved. The bot must not run the command again nor answer it twice.

And one on a command that asks first (`products remove`): shopbot.answer_taken, the
owner's ✅ taken as the answer, the command not yet run. After the restart the ✅ comes
again and must still find its question: the product removed once, answered once.
"""

from __future__ import annotations

from typing import Any

import pytest

from bots.shopbot.bot import INTERRUPTED
from mercato.matrix.admin import register_user
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.reliability.harness import Harness, timeline, until


def _answers(events: list[dict[str, Any]], bot: str, command_id: str) -> list[str]:
    return [e["content"]["body"] for e in events
            if e["sender"] == bot and e["type"] == "m.room.message"
            and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get(
                "event_id") == command_id]


async def _dm_with_bot(owner: MatrixClient, bot: str) -> str:
    room_id = await owner.create_dm(bot)
    await owner.wait_for_message(room_id, lambda e: e["type"] == "m.room.member"
                                 and e["state_key"] == bot
                                 and e["content"]["membership"] == "join")
    return room_id


@pytest.mark.parametrize("fault", ["shopbot.before_reply", "shopbot.after_reply"])
async def test_a_command_cut_by_a_crash_is_done_and_answered_once(harness: Harness, http,
                                                                  fault: str) -> None:
    harness.start_synapse()
    harness.start_commerce()
    bot = harness.config.user_id(harness.config.shopbot.localpart)
    await register_user(http, harness.hs_url, harness.config.synapse.registration_shared_secret,
                        harness.config.shopbot.localpart, harness.config.shopbot.password)
    harness.start_shopbot(env={"MERCATO_FAULTS": f"{fault}=1"})
    api = Api(harness, http)
    owner = await new_user(harness, http, "owner")
    slug, _ = await open_shop(api, owner.user_id)
    room_id = await _dm_with_bot(owner, bot)
    keys = "SELECT COUNT(*) FROM api_key WHERE merchant_slug=? AND label=?"

    command_id = await owner.send_text(room_id, "!keys create Till sync")
    assert harness.shopbot is not None
    await until(lambda: harness.shopbot.poll() is not None, 30, f"the crash at {fault}")
    assert harness.shopbot.returncode == 137
    assert harness.rows(keys, slug, "Till sync")[0][0] == 1, "the key was made before the crash"
    answered_before = _answers(await timeline(owner, room_id), bot, command_id)
    assert len(answered_before) == (1 if fault == "shopbot.after_reply" else 0)

    harness.start_shopbot()
    # A later command shows the bot has handled everything before it.
    probe_id = await owner.send_text(room_id, "!ping")
    await until(lambda: _answers_now(owner, room_id, bot, probe_id), 30, "the bot answering")
    answers = _answers(await timeline(owner, room_id), bot, command_id)
    assert harness.rows(keys, slug, "Till sync")[0][0] == 1, "the command ran twice"
    assert len(answers) == 1, answers
    if fault == "shopbot.before_reply":
        assert answers == [INTERRUPTED]
    else:
        assert answers == answered_before
    print(f"\nRESULT shopbot fault={fault} keys=1 answers=1 lost=0 doubled=0")


async def _answers_now(owner: MatrixClient, room_id: str, bot: str, command_id: str) -> bool:
    return bool(_answers(await timeline(owner, room_id), bot, command_id))


async def test_a_yes_cut_by_a_crash_is_still_acted_on(harness: Harness, http) -> None:
    harness.start_synapse()
    harness.start_commerce()
    bot = harness.config.user_id(harness.config.shopbot.localpart)
    await register_user(http, harness.hs_url, harness.config.synapse.registration_shared_secret,
                        harness.config.shopbot.localpart, harness.config.shopbot.password)
    harness.start_shopbot(env={"MERCATO_FAULTS": "shopbot.answer_taken=1"})
    api = Api(harness, http)
    owner = await new_user(harness, http, "owner")
    slug, key = await open_shop(api, owner.user_id)
    status, product = await api.call("POST", f"/shops/{slug}/products", key, {
        "sku": "mug-1", "title": "Stoneware mug", "price": "24.00", "currency": "EUR"})
    assert status == 201, product
    room_id = await _dm_with_bot(owner, bot)
    products = "SELECT COUNT(*) FROM product WHERE merchant_slug=? AND sku=?"

    command_id = await owner.send_text(room_id, "!products remove mug-1")
    question = await owner.wait_for_message(
        room_id, lambda e: e["sender"] == bot and e["type"] == "m.room.message"
        and "Remove" in e["content"]["body"], timeout=30)
    await owner.send(room_id, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": question["event_id"], "key": "✅"}},
        "m.reaction")
    assert harness.shopbot is not None
    await until(lambda: harness.shopbot.poll() is not None, 30, "the crash after the ✅")
    assert harness.shopbot.returncode == 137
    assert harness.rows(products, slug, "mug-1")[0][0] == 1, "removed before the crash"

    harness.start_shopbot()
    probe_id = await owner.send_text(room_id, "!ping")
    await until(lambda: _answers_now(owner, room_id, bot, probe_id), 30, "the bot answering")
    answers = [body for body in _answers(await timeline(owner, room_id), bot, command_id)
               if body != question["content"]["body"]]
    assert harness.rows(products, slug, "mug-1")[0][0] == 0, "the ✅ was lost"
    assert len(answers) == 1 and answers[0].startswith("Removed mug-1"), answers
    print("\nRESULT shopbot fault=shopbot.answer_taken removed=1 answers=1 lost=0 doubled=0")
