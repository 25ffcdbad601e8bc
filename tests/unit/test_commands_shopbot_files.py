"""What the shop bot answers to a file sent on its own, and to a message far too long.

No server: the bot's Matrix client is a recorder and the commerce API a stand-in
(from the catalog tests), so the tests read the notices a user would get.
"""

from __future__ import annotations

from typing import Any

import pytest

from bots.shopbot.bot import ShopBot
from bots.shopbot.context import Attachment
from bots.shopbot.files import file_answer, kind_of
from tests.unit.test_commands_shopbot_commerce import (
    FakeCommerce,
    RecordingClient,
    bot,
    message,
    text,
)

__all__ = ["bot"]  # the fixture, shared with the catalog tests

CONTACTS = "@contacts:hs.example"


def upload(name: str, mimetype: str, msgtype: str = "m.file") -> dict[str, Any]:
    return {"msgtype": msgtype, "body": name, "url": "mxc://hs/f",
            "info": {"mimetype": mimetype, "size": 100}}


def answer_to(name: str, mimetype: str, shops: list[dict[str, str]] | None,
              msgtype: str = "m.file") -> str:
    attachment = Attachment.of(upload(name, mimetype, msgtype))
    assert attachment is not None
    return file_answer(attachment, shops, prefix="", contacts_bot=CONTACTS)


OWNER = [{"slug": "green", "role": "owner"}]


@pytest.mark.parametrize(("name", "mimetype", "kind"), [
    ("products.csv", "", "table"),
    ("export", "text/csv", "table"),
    ("contacts.vcf", "text/vcard", "address_book"),
    ("Kari.VCF", "application/octet-stream", "address_book"),
    ("contacts", "text/x-vcard", "address_book"),
    ("photo.jpg", "image/jpeg", "image"),
    ("clip.mp4", "video/mp4", "other"),
    ("price-list.pdf", "application/pdf", "other"),
])
def test_what_a_file_looks_like(name: str, mimetype: str, kind: str) -> None:
    assert kind_of(Attachment("mxc://hs/f", name, mimetype)) == kind


def test_a_catalog_file_is_answered_with_how_to_import_it() -> None:
    answer = answer_to("products.csv", "text/csv", OWNER)
    assert answer.startswith("To import “products.csv” into your shop's catalog, reply to it "
                             "with products import (add --currency EUR")
    assert CONTACTS in answer
    several = OWNER + [{"slug": "blue", "role": "editor"}, {"slug": "red", "role": "support"}]
    assert "products import --shop green|blue (add" in answer_to("p.csv", "text/csv", several)
    # Unknown roles (the shop service did not answer): the same advice, without --shop.
    assert answer_to("p.csv", "text/csv", None).startswith("To import “p.csv” into your")


def test_staff_who_cannot_import_and_buyers_are_told_where_it_goes() -> None:
    answer = answer_to("p.csv", "text/csv", [{"slug": "green", "role": "support"}])
    assert ("importing products is for the owners and editors of green, and your role there "
            "is support") in answer
    buyer = answer_to("contacts.csv", "text/csv", [])
    assert buyer.startswith("If “contacts.csv” is your address book, send it to the contacts "
                            f"bot, {CONTACTS}, in a direct chat, and it tells you who of your "
                            "contacts is on Mercato.")
    assert "products import" not in buyer


def test_address_books_go_to_the_contacts_bot_whoever_sends_them() -> None:
    for shops in (OWNER, [], None):
        answer = answer_to("contacts.vcf", "text/vcard", shops)
        assert answer.startswith("“contacts.vcf” is an address book, which I do not read: "
                                 f"send it to the contacts bot, {CONTACTS}, in a direct chat")


def test_images_and_other_files_say_what_the_bot_takes() -> None:
    assert answer_to("p.png", "image/png", OWNER, "m.image").startswith(
        "To post this image in a campaign, reply to it with campaign draft <kind> <title…>")
    for name, mimetype, msgtype in (("p.png", "image/png", "m.image"),
                                    ("clip.mp4", "video/mp4", "m.video"),
                                    ("note.ogg", "audio/ogg", "m.audio")):
        answer = answer_to(name, mimetype, [], msgtype)
        assert answer.startswith(f"I cannot do anything with “{name}” on its own. I take CSV "
                                 "files of products (products import)")
        assert CONTACTS in answer and answer.endswith("Type help for what I do.")


def test_a_long_file_name_is_shortened_in_answers() -> None:
    answer = answer_to("x" * 5000 + ".csv", "text/csv", OWNER)
    assert len(answer) < 500 and "xxx…”" in answer


# -- through the bot's event handling ---------------------------------------------------

async def test_a_file_sent_alone_in_a_direct_chat_is_answered(bot: ShopBot) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    await bot._on_event("!dm", message("$csv", upload("products.csv", "text/csv")), direct=True)
    (_, _, notice, txn), = client.sent
    assert notice["msgtype"] == "m.notice" and txn == "reply.$csv"
    assert notice["m.relates_to"] == {"m.in_reply_to": {"event_id": "$csv"}}
    assert "reply to it with products import" in notice["body"]
    assert "@contacts:localhost" in notice["body"]  # the contacts bot of this server
    await bot._on_event("!dm", message("$v", upload("clip.mp4", "video/mp4", "m.video")),
                        direct=True)
    assert client.sent[-1][2]["body"].startswith("I cannot do anything with “clip.mp4”")
    # In a group room, files are for the people there: no answer.
    await bot._on_event("!g", message("$g", upload("products.csv", "text/csv")), direct=False)
    assert len(client.sent) == 2


async def test_a_buyer_sending_contacts_is_sent_to_the_contacts_bot(bot: ShopBot) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    bot.api.commerce = FakeCommerce({})  # type: ignore[union-attr]
    await bot._on_event("!dm", message("$f", upload("contacts.csv", "text/csv")), direct=True)
    body = client.sent[-1][2]["body"]
    assert "the contacts bot, @contacts:localhost," in body and "products import" not in body


async def test_a_video_for_an_import_is_refused_as_not_a_csv(bot: ShopBot) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    commerce: FakeCommerce = bot.api.commerce  # type: ignore[union-attr]
    await bot._on_event("!dm", message("$cmd", text("products import")), direct=True)
    await bot._on_event("!dm", message("$v", upload("clip.mp4", "video/mp4", "m.video")),
                        direct=True)
    assert client.sent[-1][2]["body"].startswith("clip.mp4 is not a CSV file.")
    assert commerce.imported == []


HUGE = "x" * 65_536


@pytest.mark.parametrize(("room", "body", "direct"), [
    ("!dm", HUGE, True),
    ("!dm", "products add " + HUGE, True),
    ("!dm", "shops " + "shoe " * 13_000, True),
    ("!g", "!" + HUGE, False),
    ("!g", "!shops " + HUGE, False),
])
async def test_a_huge_message_gets_a_short_answer(bot: ShopBot, room: str, body: str,
                                                  direct: bool) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    await bot._on_event(room, message("$huge", text(body)), direct=direct)
    (_, _, notice, _), = client.sent
    assert len(notice["body"]) < 500
    assert notice["body"].startswith("That message is too long for a command (")


async def test_a_huge_message_in_a_group_that_is_no_command_stays_unanswered(
        bot: ShopBot) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    await bot._on_event("!g", message("$huge", text("hello " + HUGE)), direct=False)
    assert client.sent == []


@pytest.mark.parametrize("body", [
    "shops " + "s" * 5000,
    "products list " + "m" * 5000,
    "shop status " + "a" * 5000,
    "follow " + "a" * 5000,
    "shop set hours mon " + "9" * 5000,
    "shop set keywords " + "k" * 5000,
    "products add " + "s" * 5000 + " 1 EUR Mug",
    "products add mug 1 " + "E" * 5000 + " Mug",
    "products add mug " + "1" * 5000 + "x EUR Mug",
    "campaign send " + "7" * 5000 + "x",
    "staff add @" + "a" * 5000 + ":hs editor",
])
async def test_bad_values_are_quoted_as_a_short_prefix(bot: ShopBot, body: str) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    await bot._on_event("!dm", message("$bad", text(body)), direct=True)
    reply = client.sent[-1][2]["body"]
    assert len(reply) < 800, reply[:900]
