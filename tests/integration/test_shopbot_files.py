"""A file sent to the shop bot on its own, and a huge message, on the real network.

A merchant and a buyer use the bot in direct chats as any client would: each file
gets an answer naming what to do with it, and a message of tens of kilobytes a short
answer, without the message quoted back.
"""

from __future__ import annotations

import time

import aiohttp

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import Api, new_user, open_shop
from tests.integration.test_shopbot_catalog import from_bot, replies_to, upload
from tests.integration.test_shopbot_merchant import Chat


async def send_file(network: RunningNetwork, http: aiohttp.ClientSession, chat: Chat,
                    data: bytes, filename: str, mimetype: str, msgtype: str = "m.file") -> str:
    """Upload a file, send it alone (no caption, no command) and return the bot's answer."""
    user: MatrixClient = chat.user
    mxc = await upload(network, http, user, data, filename, mimetype)
    event_id = await user.send(chat.room_id, {
        "msgtype": msgtype, "body": filename, "filename": filename, "url": mxc,
        "info": {"mimetype": mimetype, "size": len(data)}})
    answer = await user.wait_for_message(chat.room_id, from_bot(chat, replies_to(event_id)))
    assert answer["content"]["msgtype"] == "m.notice"
    return str(answer["content"]["body"])


async def test_a_file_sent_alone_is_answered_with_what_to_do_with_it(
        network: RunningNetwork, http: aiohttp.ClientSession, api: Api) -> None:
    contacts_bot = network.config.user_id(network.config.contacts.bot_localpart)
    owner = await new_user(network, http, "owner")
    await open_shop(api, owner.user_id)
    merchant = await Chat.direct(network, owner)
    catalog = b"sku,title,price\ntee-1,Logo tee,15.00\n"
    answer = await send_file(network, http, merchant, catalog, "catalog.csv", "text/csv")
    assert answer.startswith("To import “catalog.csv” into your shop's catalog, reply to it "
                             "with products import"), answer
    image = await send_file(network, http, merchant, b"\x89PNG\r\n\x1a\n", "mug.png",
                            "image/png", "m.image")
    assert image.startswith("To post this image in a campaign, reply to it with campaign "
                            "draft"), image

    buyer = await Chat.direct(network, await new_user(network, http, "buyer"))
    vcard = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Kari\r\nTEL:+4741234567\r\nEND:VCARD\r\n"
    answer = await send_file(network, http, buyer, vcard, "contacts.vcf", "text/vcard")
    assert answer.startswith("“contacts.vcf” is an address book, which I do not read: send "
                             f"it to the contacts bot, {contacts_bot}, in a direct chat"), answer
    answer = await send_file(network, http, buyer, b"name,phone\nKari,+4741234567\n",
                             "contacts.csv", "text/csv")
    assert contacts_bot in answer and "products import" not in answer, answer
    video = await send_file(network, http, buyer, b"\x00\x00\x00\x18ftypmp42", "clip.mp4",
                            "video/mp4", "m.video")
    assert video.startswith("I cannot do anything with “clip.mp4” on its own."), video


async def test_a_huge_message_gets_a_short_answer_quickly(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    chat = await Chat.direct(network, await new_user(network, http, "buyer"))
    # As much as one event may carry (Synapse refuses events over 64 KiB in all).
    huge = "x" * 60_000
    started = time.monotonic()
    answer = await chat.say(huge)
    assert time.monotonic() - started < 10
    assert len(answer) < 500 and "xxxxxxxxxx" not in answer
    assert answer.startswith("That message is too long for a command (60,000 characters")
    unknown = await chat.say("y" * 10_000)
    assert unknown == ("Unknown command '" + "y" * 50 + "…'. Type help for the list.")
