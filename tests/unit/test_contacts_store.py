"""The bridge's tables and its matching, on SQLite and on PostgreSQL: keyed hashes only."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridges.contacts.db import store
from bridges.contacts.db.store import QuotaExceeded
from bridges.contacts.db.upgrade import upgrade_table
from bridges.contacts.discovery import ContactImport, Discovery, Refused
from bridges.contacts.hashing import IdentifierHasher
from bridges.contacts.importers import Medium
from bridges.contacts.policy import DAY_SECONDS, Limits
from mercato.db import Database, is_postgres, open_database

CORPUS = Path(__file__).parent / "fixtures" / "contacts"
SECRET = "test-secret-that-is-long-enough"
PEPPER = "matrixrocks"
OLA, KARI, PER, ME = "@ola:localhost", "@kari:localhost", "@per:localhost", "@me:localhost"
LIMITS = Limits(max_contacts=1_000, max_identifiers=100, per_user_per_day=150,
                per_ip_per_day=120, max_upload_bytes=2**20)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, upgrade_table, "contacts")
    await database.start()  # runs the upgrades
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
def hasher() -> IdentifierHasher:
    return IdentifierHasher(SECRET, PEPPER)


@pytest.fixture
def discovery(db: Database, hasher: IdentifierHasher) -> Discovery:
    return Discovery(db, hasher, LIMITS, clock=lambda: 10 * DAY_SECONDS + 60)


async def everything_stored(db: Database) -> str:
    """Every row of every table, as text: what someone with the database file sees."""
    if is_postgres(db):
        tables = [r["tablename"] for r in await db.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname='public'")]
    else:
        tables = [r["name"] for r in await db.fetch(
            "SELECT name FROM sqlite_master WHERE type='table'")]
    dump = []
    for table in tables:
        for row in await db.fetch(f'SELECT * FROM "{table}"'):
            dump.append(" ".join(str(value) for value in tuple(row)))
    return "\n".join(dump)


async def test_fresh_database_reaches_the_latest_version(db: Database) -> None:
    version = await db.fetchval("SELECT version FROM contacts_version")
    assert version == len(upgrade_table.upgrades)


async def test_opt_in_is_one_account_per_identifier(discovery: Discovery) -> None:
    assert await discovery.opt_in(OLA, Medium.PHONE, "+4741234567") == "added"
    assert await discovery.opt_in(OLA, Medium.PHONE, "+4741234567") == "already"
    assert await discovery.opt_in(KARI, Medium.PHONE, "+4741234567") == "taken"
    assert await discovery.opt_in(OLA, Medium.EMAIL, "ola@example.no") == "added"
    assert await discovery.status(OLA) == {"msisdn": 1, "email": 1}
    assert await discovery.opt_out(OLA, Medium.EMAIL) == 1
    assert await discovery.status(OLA) == {"msisdn": 1}
    assert await discovery.opt_out(OLA) == 1
    assert await discovery.status(OLA) == {}
    assert await discovery.opt_in(KARI, Medium.PHONE, "+4741234567") == "added"


async def test_only_keyed_hashes_are_stored(db: Database, discovery: Discovery,
                                            hasher: IdentifierHasher) -> None:
    await discovery.opt_in(OLA, Medium.PHONE, "+4741234567")
    await discovery.opt_in(OLA, Medium.EMAIL, "ola.nordmann@example.no")
    contact_import = ContactImport(hasher.digest, LIMITS, region="NO")
    contact_import.feed((CORPUS / "iphone-3.0.vcf").read_bytes())
    contact_import.close()
    outcome = await discovery.finish_import(contact_import, ME, source="dm")
    assert [m.user_id for m in outcome.matches] == [OLA]
    stored = await everything_stored(db)
    for plain in ("4741234567", "412 34 567", "41234567", "ola.nordmann", "example.no",
                  "819012345678", "Jürgen", "Müller", "Nordmann", "山田",
                  hasher.lookup_hash(Medium.PHONE, "+4741234567")):
        assert plain not in stored, plain


async def test_import_matches_only_opted_in_users_and_never_yourself(
        discovery: Discovery, hasher: IdentifierHasher) -> None:
    await discovery.opt_in(OLA, Medium.EMAIL, "ola.nordmann@example.no")
    await discovery.opt_in(KARI, Medium.PHONE, "+4791234567")
    await discovery.opt_in(ME, Medium.PHONE, "+4722123456")  # my own number is in my file
    contact_import = ContactImport(hasher.digest, LIMITS, region="NO")
    contact_import.feed((CORPUS / "plain.csv").read_bytes())
    contact_import.close()
    outcome = await discovery.finish_import(contact_import, ME, source="dm")
    assert outcome.refused is None
    assert [(m.user_id, m.label) for m in outcome.matches] == [
        (KARI, "Kari Østby"), (OLA, "Ola Nordmann")]
    assert contact_import.labels == {}  # nothing of the file is kept after matching


async def test_an_enumeration_sized_import_is_refused(discovery: Discovery,
                                                      hasher: IdentifierHasher) -> None:
    await discovery.opt_in(OLA, Medium.PHONE, "+4741234567")
    rows = "".join(f"n{i},+47 4123 {i:04d},\n" for i in range(4500, 4650))
    contact_import = ContactImport(hasher.digest, LIMITS)
    contact_import.feed(("name,phone,email\n" + rows).encode())
    contact_import.close()
    outcome = await discovery.finish_import(contact_import, ME, source="dm")
    assert outcome.refused and "enumeration" in outcome.refused
    assert outcome.matches == []
    # Under the count limit, but a sweep of consecutive numbers.
    rows = "".join(f"n{i},+47 4123 {i:04d},\n" for i in range(4500, 4560))
    contact_import = ContactImport(hasher.digest, LIMITS)
    contact_import.feed(("name,phone,email\n" + rows).encode())
    contact_import.close()
    outcome = await discovery.finish_import(contact_import, ME, source="dm")
    assert outcome.refused and "consecutive" in outcome.refused


async def test_quota_is_per_user_per_day(db: Database, discovery: Discovery,
                                         hasher: IdentifierHasher) -> None:
    await discovery.charge(ME, 100)
    with pytest.raises(QuotaExceeded) as refused:
        await discovery.charge(ME, 51)
    assert refused.value.subject_kind == "user"
    assert refused.value.retry_after_s == DAY_SECONDS - 60
    await discovery.charge(ME, 50)  # the refused charge counted nothing
    await discovery.charge(OLA, 100)  # other users have their own
    tomorrow = Discovery(db, hasher, LIMITS, clock=lambda: 11 * DAY_SECONDS)
    await tomorrow.charge(ME, 150)


async def test_quota_charges_user_and_ip_all_or_nothing(db: Database,
                                                        discovery: Discovery) -> None:
    await discovery.charge(OLA, 100, ip="192.0.2.1")
    with pytest.raises(QuotaExceeded) as refused:
        await discovery.charge(KARI, 30, ip="192.0.2.1")  # Kari is fine; the address is not
    assert refused.value.subject_kind == "ip"
    window = 10 * DAY_SECONDS
    assert await store.used(db, f"user:{KARI}", window) == 0
    assert await store.used(db, "ip:192.0.2.1", window) == 100


async def test_users_of_another_homeserver_share_its_quota(db: Database,
                                                          hasher: IdentifierHasher) -> None:
    # Another server's operator can make any number of accounts: together they get
    # per_remote_server_per_day, each still no more than per_user_per_day.
    limits = dataclasses.replace(LIMITS, local_server="localhost",
                                 per_remote_server_per_day=200)
    discovery = Discovery(db, hasher, limits, clock=lambda: 10 * DAY_SECONDS + 60)
    await discovery.charge("@a:far.example", 150)
    with pytest.raises(QuotaExceeded) as refused:
        await discovery.charge("@b:far.example", 51)
    assert refused.value.subject_kind == "server"
    assert await store.used(db, "user:@b:far.example", 10 * DAY_SECONDS) == 0
    await discovery.charge("@b:far.example", 50)
    await discovery.charge("@c:other.example", 150)  # another server: its own quota
    await discovery.charge(ME, 150)  # this server's users: only their own quota
    await discovery.charge(OLA, 150)
    assert await store.used(db, "server:localhost", 10 * DAY_SECONDS) == 0


async def test_spec_lookup(discovery: Discovery, hasher: IdentifierHasher) -> None:
    await discovery.opt_in(OLA, Medium.PHONE, "+4741234567")
    ola = hasher.lookup_hash(Medium.PHONE, "+4741234567")
    kari = hasher.lookup_hash(Medium.PHONE, "+4791234567")
    found = await discovery.lookup(ME, [ola, kari], ip="192.0.2.9", source="identity")
    assert found == {ola: OLA}
    with pytest.raises(Refused):
        await discovery.lookup(ME, [kari] * 101, ip="192.0.2.9", source="identity")


async def test_many_digests_are_looked_up_in_batches(db: Database,
                                                     hasher: IdentifierHasher) -> None:
    digests = [hasher.digest(Medium.EMAIL, f"user{i}@example.org") for i in range(1_200)]
    for i in (0, 600, 1_199):
        await store.add_findable(db, digests[i], f"@u{i}:localhost", "email")
    assert await store.owners_of(db, digests) == {
        digests[0]: "@u0:localhost", digests[600]: "@u600:localhost",
        digests[1199]: "@u1199:localhost"}


async def test_tokens_summaries_and_stats(db: Database) -> None:
    await store.add_token(db, "ab" * 32, OLA)
    assert await store.token_owner(db, "ab" * 32) == OLA
    await store.remove_token(db, "ab" * 32)
    assert await store.token_owner(db, "ab" * 32) is None
    await store.save_summary(db, "$one", ME, "!dm:localhost", [OLA, KARI])
    await store.save_summary(db, "$one", ME, "!dm:localhost", [PER])  # a retry changes nothing
    found = await store.summary(db, "$one")
    assert found is not None and found.matches == [OLA, KARI]
    assert (await store.latest_summary(db, ME, "!dm:localhost")).event_id == "$one"
    await store.record_run(db, ME, "dm", 10, 12, 2)
    await store.record_run(db, ME, "identity", 0, 5000, 0, "enumeration")
    stats = await store.stats(db)
    assert stats["imports"]["dm"] == {"runs": 1, "contacts": 10, "identifiers": 12,
                                      "matched": 2, "refused": 0}
    assert stats["imports"]["identity"]["refused"] == 1
