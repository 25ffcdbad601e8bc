"""The shop bot and the contacts bridge bot answer a buyer in a direct chat."""

from __future__ import annotations

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient


def reply_to(event_id: str, sender: str):
    def matches(event: dict) -> bool:
        relation = event.get("content", {}).get("m.relates_to", {})
        return (event.get("sender") == sender
                and relation.get("m.in_reply_to", {}).get("event_id") == event_id)
    return matches


async def test_shopbot_answers_in_a_dm(network: RunningNetwork, buyer: MatrixClient) -> None:
    bot = network.demo["shopbot"]
    room_id = await buyer.create_dm(bot)
    await buyer.wait_for_message(
        room_id, lambda e: e["type"] == "m.room.member" and e["state_key"] == bot
        and e["content"]["membership"] == "join")
    ping = await buyer.send_text(room_id, "ping")
    pong = await buyer.wait_for_message(room_id, reply_to(ping, bot))
    assert pong["content"]["body"] == "pong"
    assert pong["content"]["msgtype"] == "m.notice"
    # Both spellings work in a direct chat; answers there write commands without the "!".
    for typed in ("help", "!help"):
        asked = await buyer.send_text(room_id, typed)
        help_text = (await buyer.wait_for_message(room_id, reply_to(asked, bot)))
        lines = help_text["content"]["body"].splitlines()
        assert "ping — check that the bot is alive" in lines
        assert "shops [search…] — browse or search the shop directory" in lines
        assert lines[-1] == ("Type help <command> for details. In a group room, start each "
                             "command with ! (!help).")
    wrong = await buyer.send_text(room_id, "!pnig")
    refusal = (await buyer.wait_for_message(room_id, reply_to(wrong, bot)))["content"]["body"]
    assert refusal == "Unknown command 'pnig'. Did you mean ping? Type help for the list."


async def test_contacts_bot_greets_once(network: RunningNetwork, buyer: MatrixClient) -> None:
    bot = network.demo["contacts_bot"]
    room_id = await buyer.create_dm(bot)
    greeting = await buyer.wait_for_message(
        room_id, lambda e: e.get("sender") == bot and e["type"] == "m.room.message")
    assert "contacts bridge" in greeting["content"]["body"]
    assert greeting["content"]["msgtype"] == "m.notice"
