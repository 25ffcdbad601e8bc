"""The contacts bot's commands and its import summary (on a real SQLite database)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bridges.contacts.commands import ContactsContext, registry
from bridges.contacts.db import store
from bridges.contacts.db.upgrade import upgrade_table
from bridges.contacts.discovery import ContactImport, Discovery, ImportOutcome, Match
from bridges.contacts.hashing import IdentifierHasher
from bridges.contacts.importers import ImportReport, Medium
from bridges.contacts.policy import Limits
from bridges.contacts.summary import chat_links, import_summary
from bridges.contacts.verification import MAX_ATTEMPTS, CodeSender
from mercato.config import parse_config
from mercato.db import Database, open_database
from tests.verification_sinks import MailSink, SmsGateway, contacts_settings

ME, OLA = "@me:localhost", "@ola:localhost"
ROOM = "!dm:localhost"
LIMITS = Limits(max_contacts=1_000, max_identifiers=1_000, per_user_per_day=5_000,
                per_ip_per_day=5_000, max_upload_bytes=2**20)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite:{tmp_path / 'contacts.db'}", upgrade_table, "contacts")
    await database.start()
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
def discovery(db: Database) -> Discovery:
    return Discovery(db, IdentifierHasher("test-secret-that-is-long-enough", "pepper42"),
                     LIMITS)


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[SmsGateway, MailSink]]:
    sms, mail = SmsGateway(token="gateway-token").start(), MailSink().start()
    try:
        yield sms, mail
    finally:
        sms.stop()
        mail.stop()


@pytest.fixture
async def codes(sinks: tuple[SmsGateway, MailSink]) -> AsyncIterator[CodeSender]:
    config = parse_config({"contacts": contacts_settings(*sinks)})
    async with aiohttp.ClientSession() as session:
        yield CodeSender(config.contacts, "localhost", lambda: session)


async def say(text: str, db: Database, discovery: Discovery, *, sender: str = ME,
              direct: bool = True, codes: CodeSender | None = None,
              homeserver: set[tuple[Medium, str]] | None = None) -> tuple[str, ContactsContext]:
    async def homeserver_verified(user_id: str) -> set[tuple[Medium, str]]:
        return homeserver or set()

    ctx = ContactsContext(sender=sender, room_id=ROOM, direct=direct, db=db,
                          discovery=discovery, codes=codes,
                          homeserver_verified=homeserver_verified)
    outcome = await registry.dispatch(text, ctx)
    assert outcome is not None
    return outcome.reply.text, ctx


async def test_findable_phone_and_email_after_a_code(
        db: Database, discovery: Discovery, codes: CodeSender,
        sinks: tuple[SmsGateway, MailSink]) -> None:
    sms, mail = sinks
    reply, ctx = await say("findable phone +47 412 34 567", db, discovery, codes=codes)
    assert "I sent an SMS with a 6-digit code" in reply
    assert "412" not in reply and "4741234567" not in reply  # only "ending …67"
    assert ctx.held_identifier
    assert await discovery.status(ME) == {}  # not findable until verified
    reply, _ = await say(f"verify {await sms.code_for('+4741234567')}", db, discovery)
    assert "your number is verified" in reply and "can now find you" in reply
    reply, _ = await say("findable email Ola@Example.NO", db, discovery, codes=codes)
    assert "I sent an email" in reply and "ola@" not in reply.lower()
    reply, _ = await say(f"verify {await mail.code_for('ola@example.no')}", db, discovery)
    assert "can now find you" in reply
    reply, _ = await say("findable", db, discovery)
    assert "1 phone number(s) and 1 email address(es)" in reply
    reply, _ = await say("findable phone +47 412 34 567", db, discovery, sender=OLA,
                         codes=codes)
    assert "Another account has already verified" in reply
    reply, _ = await say("findable off phone", db, discovery)
    assert "forgot 1" in reply
    reply, _ = await say("findable off", db, discovery)
    assert "forgot 1" in reply
    assert await discovery.status(ME) == {}


async def test_codes_are_few_tries_expire_and_are_stored_hashed(
        db: Database, discovery: Discovery, codes: CodeSender,
        sinks: tuple[SmsGateway, MailSink], tmp_path: Path) -> None:
    sms, _mail = sinks
    reply, _ = await say("verify 000000", db, discovery)
    assert "no code waiting" in reply
    await say("findable phone +4741234500", db, discovery, codes=codes)
    code = await sms.code_for("+4741234500")
    raw = (tmp_path / "contacts.db").read_bytes()
    assert code.encode() not in raw and b"41234500" not in raw
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    reply, _ = await say(f"verify {wrong}", db, discovery)
    assert f"try {MAX_ATTEMPTS - 1} more time(s)" in reply
    reply, _ = await say("verify 12 34", db, discovery)
    assert "6 digits" in reply  # a usage error counts no try
    for _ in range(MAX_ATTEMPTS - 1):
        reply, _ = await say(f"verify {wrong}", db, discovery)
    assert "no code waiting" in reply
    reply, _ = await say(f"verify {code}", db, discovery)  # the right code, too late
    assert "no code waiting" in reply and await discovery.status(ME) == {}
    # A new code works; an expired one does not.
    await say("findable phone +4741234500", db, discovery, codes=codes)
    code = await sms.code_for("+4741234500", after=1)
    await db.execute("UPDATE verification SET expires_at=1")
    reply, _ = await say(f"verify {code}", db, discovery)
    assert "no code waiting" in reply and await discovery.status(ME) == {}


async def test_codes_per_day_and_a_failed_send(db: Database, discovery: Discovery,
                                               codes: CodeSender) -> None:
    for _ in range(3):
        reply, _ = await say("findable phone +4741234511", db, discovery, codes=codes)
        assert "I sent an SMS" in reply
    reply, _ = await say("findable phone +4741234511", db, discovery, codes=codes)
    assert "as many codes today as a day allows" in reply
    broken = parse_config({"contacts": {"sms_webhook_url": "http://127.0.0.1:9/sms"}})
    async with aiohttp.ClientSession() as session:
        sender = CodeSender(broken.contacts, "localhost", lambda: session)
        reply, _ = await say("findable phone +4741234522", db, discovery, codes=sender)
    assert "could not send you a code" in reply and "could not be reached" in reply
    assert len(await store.pending_codes(db, ME)) == 1  # only the number that got a code


async def test_without_code_senders_the_operator_setting_is_named(
        db: Database, discovery: Discovery) -> None:
    reply, _ = await say("findable phone +4741234533", db, discovery)
    assert "contacts.sms_webhook_url" in reply and "Nothing was kept" in reply
    reply, _ = await say("findable email a@example.org", db, discovery)
    assert "contacts.smtp.host" in reply
    assert await store.pending_codes(db, ME) == [] and await discovery.status(ME) == {}


async def test_opt_ins_from_before_verification_are_kept_but_not_found(
        db: Database, discovery: Discovery, codes: CodeSender,
        sinks: tuple[SmsGateway, MailSink]) -> None:
    digest = discovery.hasher.digest(Medium.PHONE, "+4741234544")
    await db.execute("INSERT INTO findable (digest, user_id, medium, verified, created_at)"
                     " VALUES ($1, $2, 'msisdn', false, 1)", digest, OLA)
    assert await store.owners_of(db, [digest]) == {}
    reply, _ = await say("findable", db, discovery, sender=OLA)
    assert "1 identifier(s) you opted in with before I verified them" in reply
    assert (await store.stats(db))["findable_unverified"] == 1
    # Someone who verifies the number takes it over from the unverified claim.
    await say("findable phone +4741234544", db, discovery, codes=codes)
    reply, _ = await say(f"verify {await sinks[0].code_for('+4741234544')}", db, discovery)
    assert "can now find you" in reply
    assert await store.owners_of(db, [digest]) == {digest: ME}


async def test_findable_needs_a_direct_chat(db: Database, discovery: Discovery) -> None:
    reply, _ = await say("!findable phone +4741234567", db, discovery, direct=False)
    assert "works only in a direct chat" in reply
    assert await discovery.status(ME) == {}


async def test_bad_numbers_and_regions_say_what_to_type(db: Database,
                                                        discovery: Discovery) -> None:
    reply, _ = await say("findable phone 41234567", db, discovery)
    assert "no country code" in reply and "region NO" in reply
    reply, _ = await say("region Norway", db, discovery)
    assert "two letters such as NO" in reply
    reply, _ = await say("region no", db, discovery)
    assert "read as NO numbers" in reply
    reply, _ = await say("findable phone 41234567", db, discovery,
                         homeserver={(Medium.PHONE, "+4741234567")})
    assert "can now find you" in reply and "homeserver account lists it" in reply
    reply, _ = await say("region", db, discovery)
    assert "NO" in reply
    reply, _ = await say("region off", db, discovery)
    assert "cleared" in reply


async def test_dm_gives_links_from_the_last_summary(db: Database,
                                                    discovery: Discovery) -> None:
    reply, _ = await say("dm all", db, discovery)
    assert "Send me a contacts file" in reply
    await store.save_summary(db, "$summary", ME, ROOM, [OLA])
    reply, _ = await say("dm all", db, discovery)
    assert "https://matrix.to/#/@ola:localhost" in reply and "I am not in it" in reply
    reply, _ = await say("dm @ola:localhost", db, discovery)
    assert "https://matrix.to/#/@ola:localhost" in reply
    reply, _ = await say("dm @kari:localhost", db, discovery)
    assert "was not among" in reply
    reply, _ = await say("dm everyone", db, discovery)
    assert "Matrix ID" in reply


async def test_help_lists_the_commands(db: Database, discovery: Discovery) -> None:
    reply, _ = await say("help", db, discovery)
    for word in ("findable", "region", "dm", "import"):
        assert f"\n{word} " in reply  # written as typed in a direct chat: no prefix
    reply, _ = await say("import", db, discovery)
    assert ".vcf" in reply and "name,phone,email" in reply


def test_summary_lists_matches_and_problems_without_numbers() -> None:
    contact_import = ContactImport(lambda medium, value: f"{medium}:{value}", LIMITS,
                                   region="NO")
    contact_import.feed((Path(__file__).parent / "fixtures" / "contacts" / "formula.csv")
                        .read_bytes())
    contact_import.close()
    outcome = ImportOutcome(contact_import.report,
                            matches=[Match(OLA, "'=cmd|' /C calc'!A0")])
    reply = import_summary(outcome, "contacts.csv")
    assert "I read 3 contacts from contacts.csv (CSV, UTF-8)" in reply.text
    assert "1 of them is on Mercato" in reply.text and OLA in reply.text
    assert "✅" in reply.text and "dm all" in reply.text
    assert "could not read (2)" in reply.text
    assert 'href="https://matrix.to/#/@ola:localhost"' in (reply.html or "")
    for line in reply.text.splitlines():
        assert not line.startswith(("=", "+", "-", "@"))
    assert "4741234567" not in reply.text and "HYPERLINK" not in reply.text


def test_summary_of_a_refused_import() -> None:
    report = ImportReport(format="vCard", encoding="UTF-8", contacts=20_000,
                          with_identifiers=20_000)
    reply = import_summary(ImportOutcome(report, refused="it looks like enumeration"),
                           "all.vcf")
    assert "did not look any of them up: it looks like enumeration" in reply.text
    assert "on Mercato:" not in reply.text


def test_chat_links() -> None:
    reply = chat_links([OLA, "@kari:example.org"])
    assert reply.text.count("https://matrix.to/#/") == 2
    assert chat_links([]).text.startswith("There is no one")


def test_medium_values_are_the_spec_names() -> None:
    assert (Medium.PHONE.value, Medium.EMAIL.value) == ("msisdn", "email")
