"""The contacts bridge against a real Synapse: opt in, send a vCard, get the right matches,
start chats from the summary, and find none of the uploaded numbers anywhere afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import phonenumbers

from mercato_ops.testnet import RunningNetwork
from tests.integration.client import MatrixClient
from tests.integration.shop_helpers import new_user
from tests.verification_sinks import MailSink, SmsGateway


def _reply_to(event_id: str, sender: str) -> Callable[[dict[str, Any]], bool]:
    def matches(event: dict[str, Any]) -> bool:
        relation = event.get("content", {}).get("m.relates_to", {})
        return (event.get("sender") == sender and event.get("type") == "m.room.message"
                and relation.get("m.in_reply_to", {}).get("event_id") == event_id)
    return matches


async def open_bridge_dm(client: MatrixClient, network: RunningNetwork) -> str:
    """A direct chat with the contacts bot, once it has joined and greeted."""
    bot = network.config.user_id(network.config.contacts.bot_localpart)
    room_id = await client.create_dm(bot)
    await client.wait_for_message(room_id, lambda e: e.get("sender") == bot
                                  and e["type"] == "m.room.message", timeout=60)
    return room_id


async def command(client: MatrixClient, network: RunningNetwork, room_id: str,
                  text: str) -> dict[str, Any]:
    """Send a command to the contacts bot and return its reply event."""
    bot = network.config.user_id(network.config.contacts.bot_localpart)
    sent = await client.send_text(room_id, text)
    return await client.wait_for_message(room_id, _reply_to(sent, bot), timeout=60)


async def become_findable(client: MatrixClient, network: RunningNetwork, room_id: str,
                          sinks: tuple[SmsGateway, MailSink], text: str,
                          to: str) -> dict[str, Any]:
    """`findable phone …` or `findable email …`, then `verify` with the code that arrives
    by SMS or mail at `to` (E.164, or the address); returns the bot's answer to `verify`."""
    sms, mail = sinks
    sink: SmsGateway | MailSink = sms if to.startswith("+") else mail
    before = len(sink.sent_to(to))
    reply = await command(client, network, room_id, text)
    assert "I sent" in reply["content"]["body"], reply["content"]["body"]
    code = await sink.code_for(to, after=before)
    return await command(client, network, room_id, f"verify {code}")


async def upload(client: MatrixClient, data: bytes, content_type: str) -> str:
    # No file name in the URL: Synapse's access log would show it.
    async with client.session.post(f"{client.homeserver}/_matrix/media/v3/upload",
                                   data=data, headers={
                                       "Authorization": f"Bearer {client.token}",
                                       "Content-Type": content_type}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return body["content_uri"]


async def send_file(client: MatrixClient, network: RunningNetwork, room_id: str, data: bytes,
                    filename: str, content_type: str, *,
                    declared_size: int | None = None) -> dict[str, Any]:
    """Upload a file, send it as m.file to the bot, and return the bot's answer."""
    mxc = await upload(client, data, content_type)
    bot = network.config.user_id(network.config.contacts.bot_localpart)
    sent = await client.send(room_id, {
        "msgtype": "m.file", "body": filename, "filename": filename, "url": mxc,
        "info": {"mimetype": content_type,
                 "size": len(data) if declared_size is None else declared_size}})
    return await client.wait_for_message(room_id, _reply_to(sent, bot), timeout=120)


async def react(client: MatrixClient, room_id: str, event_id: str, key: str) -> str:
    return await client.send(room_id, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": event_id, "key": key}}, "m.reaction")


def _phone_forms(e164: str, raw: str) -> list[str]:
    """How a number could appear if it leaked: as typed, E.164, msisdn, national."""
    national = raw.split(" ", 1)[1] if raw.startswith("+") else raw
    # (Not the bare 8 national digits: logs are full of long numbers that could hold them.)
    return [raw, e164, e164.removeprefix("+"), national]


def stored_files(network: RunningNetwork) -> dict[Path, bytes]:
    """The bridge's database (with its write-ahead log) and every log of the network.

    On PostgreSQL (the scale profile) the database is read as a dump of every row, which
    is what anyone reading the database or its backups sees.
    """
    data = network.config.data_path
    files = [data / name for name in ("contacts.db", "contacts.db-wal", "contacts.db-journal")]
    files += sorted((data / "logs").rglob("*"))
    files.append(network.output_path)
    stored = {path: path.read_bytes() for path in files if path.is_file()}
    url = network.config.database_url("contacts")
    if url.startswith("postgres"):
        dump = subprocess.run(["pg_dump", "--data-only", "--dbname", url],
                              capture_output=True, check=True)
        stored[Path("pg_dump of the contacts database")] = dump.stdout
    return stored


async def assert_nowhere(network: RunningNetwork, secrets: list[str],
                         timeout: float = 30.0) -> None:
    """None of the strings is in the bridge's database or the logs (allowing the bridge a
    moment to scrub the copies of handled messages from its inbox)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [(path.name, secret) for path, content in stored_files(network).items()
                 for secret in secrets if secret.encode() in content]
        if not found or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert not found, f"found in plain text: {found}"


def unique_number(prefix: str = "4") -> tuple[str, str]:
    """A valid Norwegian mobile number no other test uses: (E.164, as people type it)."""
    while True:
        digits = f"{prefix}{uuid.uuid4().int % 10**7:07d}"
        number = phonenumbers.parse(f"+47{digits}")
        if phonenumbers.is_valid_number(number):
            return f"+47{digits}", f"+47 {digits[:3]} {digits[3:5]} {digits[5:]}"


def vcard(cards: list[tuple[str, str, str | None]]) -> bytes:
    out = []
    for name, phone, email in cards:
        out += ["BEGIN:VCARD", "VERSION:3.0", f"FN:{name}", f"TEL;type=CELL:{phone}"]
        if email:
            out.append(f"EMAIL;type=INTERNET:{email}")
        out.append("END:VCARD")
    return ("\r\n".join(out) + "\r\n").encode()


async def test_a_vcard_finds_only_opted_in_people_and_keeps_no_numbers(
        network: RunningNetwork, http: aiohttp.ClientSession,
        code_sinks: tuple[SmsGateway, MailSink]) -> None:
    bot = network.config.user_id(network.config.contacts.bot_localpart)
    ola = await new_user(network, http, "ola")
    kari = await new_user(network, http, "kari")
    importer = await new_user(network, http, "importer")
    ola_e164, ola_raw = unique_number("4")
    kari_e164, kari_raw = unique_number("9")
    stranger_e164, stranger_raw = unique_number("4")

    # Ola opts in to be found by his number, verified with the code sent to it; Kari
    # asks for a code but never types it, so she stays unfindable.
    ola_room = await open_bridge_dm(ola, network)
    asked_at = await command(ola, network, ola_room, f"findable phone {ola_raw}")
    assert "I sent an SMS" in asked_at["content"]["body"]
    assert ola_e164[-6:] not in asked_at["content"]["body"]
    # The bot takes Ola's message with his number out of the chat.
    asked = asked_at["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
    await ola.wait_for_message(ola_room, lambda e: e["event_id"] == asked
                               and not e.get("content") and "redacted_because"
                               in e.get("unsigned", {}))
    code = await code_sinks[0].code_for(ola_e164)
    reply = await command(ola, network, ola_room, f"verify {code}")
    assert "can now find you" in reply["content"]["body"]
    kari_room = await open_bridge_dm(kari, network)
    reply = await command(kari, network, kari_room, f"findable phone {kari_raw}")
    assert "I sent an SMS" in reply["content"]["body"]

    # The importer sends an address book holding both numbers (and a stranger's).
    room_id = await open_bridge_dm(importer, network)
    book = vcard([("Ola Nordmann", ola_raw, None), ("Kari Østby", kari_raw, None),
                  ("Someone Else", stranger_raw, "someone.else@example.org"),
                  ("Broken Number", "12", None)])
    answer = await send_file(importer, network, room_id, book, "contacts.vcf", "text/vcard")
    body = answer["content"]["body"]
    assert "I read 4 contacts from contacts.vcf" in body
    assert ola.user_id in body and kari.user_id not in body
    assert "Ola Nordmann" in body
    assert "Broken Number" in body  # what could not be read, named by the contact
    assert f"https://matrix.to/#/{ola.user_id}" in answer["content"]["formatted_body"]
    assert "Someone Else" not in body

    # The bot seeded ✅ under its summary; the importer's ✅ answers with chat links.
    await importer.wait_for_message(room_id, lambda e: e["type"] == "m.reaction"
                                    and e["sender"] == bot
                                    and e["content"]["m.relates_to"]["event_id"]
                                    == answer["event_id"])
    await react(importer, room_id, answer["event_id"], "✅")
    links = await importer.wait_for_message(
        room_id, _reply_to(answer["event_id"], bot), timeout=60)
    assert f"https://matrix.to/#/{ola.user_id}" in links["content"]["body"]
    assert kari.user_id not in links["content"]["body"]
    reply = await command(importer, network, room_id, "dm all")
    assert f"https://matrix.to/#/{ola.user_id}" in reply["content"]["body"]
    reply = await command(importer, network, room_id, f"dm {kari.user_id}")
    assert "was not among" in reply["content"]["body"]

    # Nothing of the file is kept or logged: no number in any form, no name, no address.
    secrets = [*_phone_forms(ola_e164, ola_raw), *_phone_forms(kari_e164, kari_raw),
               *_phone_forms(stranger_e164, stranger_raw), "Ola Nordmann", "Kari Østby",
               "Someone Else", "someone.else@example.org", "Broken Number"]
    await assert_nowhere(network, secrets)
    # What was searched is the bridge's database, with the opt-ins in it.
    assert any(b"CREATE TABLE findable" in content or b"COPY public.findable" in content
               for content in stored_files(network).values())


async def test_a_file_too_big_or_not_contacts_is_refused(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    user = await new_user(network, http, "bigfile")
    room_id = await open_bridge_dm(user, network)
    limit = network.config.contacts.max_upload_bytes
    # It claims to be small, so the bridge starts reading, and stops at the limit.
    huge = b"BEGIN:VCARD\r\nFN:x\r\nNOTE:" + b"x" * (limit + 1024) + b"\r\nEND:VCARD\r\n"
    answer = await send_file(user, network, room_id, huge, "all.vcf", "text/vcard",
                             declared_size=1000)
    assert "larger than" in answer["content"]["body"]
    answer = await send_file(user, network, room_id, b"x" * 100, "all.vcf", "text/vcard",
                             declared_size=limit + 1)
    assert "larger than" in answer["content"]["body"]
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    answer = await send_file(user, network, room_id, png, "photo.png", "image/png")
    assert "could not read photo.png" in answer["content"]["body"]
    assert "not a text file" in answer["content"]["body"]


async def test_an_enumeration_upload_is_refused_and_logged_without_numbers(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    user = await new_user(network, http, "sweeper")
    room_id = await open_bridge_dm(user, network)
    start = 41200000 + uuid.uuid4().int % 99_000  # a valid mobile range
    sweep = [f"+47{start + i}" for i in range(300)]
    book = vcard([(f"n{i}", number, None) for i, number in enumerate(sweep)])
    answer = await send_file(user, network, room_id, book, "sweep.vcf", "text/vcard")
    body = answer["content"]["body"]
    assert "did not look any of them up" in body and "consecutive" in body
    logs = (network.config.data_path / "logs" / "contacts.out").read_text(errors="replace")
    assert "import.refused" in logs and user.user_id in logs
    await assert_nowhere(network, [sweep[0], sweep[150], sweep[-1].removeprefix("+")])


async def test_the_bridge_bot_answers_help(network: RunningNetwork,
                                           http: aiohttp.ClientSession) -> None:
    user = await new_user(network, http, "helpme")
    room_id = await open_bridge_dm(user, network)
    reply = await command(user, network, room_id, "help")
    assert "\nfindable " in reply["content"]["body"] and "\ndm " in reply["content"]["body"]
    reply = await command(user, network, room_id, "findabel phone +4741234567")
    assert "Did you mean" in reply["content"]["body"]



async def test_a_chinese_excel_export_is_read_and_the_answer_names_its_columns(
        network: RunningNetwork, http: aiohttp.ClientSession) -> None:
    """The CSV Chinese Excel and WeChat write: GBK, headed 姓名,手机,邮箱 (once refused as
    "I do not recognise this CSV file")."""
    user = await new_user(network, http, "zhbook")
    room_id = await open_bridge_dm(user, network)
    book = ("姓名,手机,邮箱\r\n张伟,+86 138 0013 8000,zhangwei@example.cn\r\n"
            "王芳,+86 135 1234 5678,wangfang@example.cn\r\n").encode("gbk")
    answer = await send_file(user, network, room_id, book, "通讯录.csv", "text/csv")
    body = answer["content"]["body"]
    assert "I read 2 contacts from 通讯录.csv (CSV, GBK/GB18030): 2 with a phone number" in body
    assert "Read names from 姓名, phone numbers from 手机, emails from 邮箱." in body
    assert "do not recognise" not in body
    assert "Read names from 姓名" in answer["content"]["formatted_body"]
