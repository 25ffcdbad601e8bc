"""Invite links: the `invite` command, conversion when the invited person opts in, the
`/invite/<code>` page with its QR code, the stats, and the import page: its short-lived
token, its scripts and the reading rules it carries."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridges.contacts.api import ApiContext, add_api_routes
from bridges.contacts.api.pages import page_rules, qr_svg
from bridges.contacts.commands import ContactsContext, registry
from bridges.contacts.db import store
from bridges.contacts.db.upgrade import upgrade_table
from bridges.contacts.discovery import Discovery
from bridges.contacts.hashing import IdentifierHasher
from bridges.contacts.importers import Medium
from bridges.contacts.importers.csv_headers import browser_rules, normalise
from bridges.contacts.policy import Limits
from mercato.config import parse_config
from mercato.db import Database, open_database

ME, KARI, OLA = "@me:localhost", "@kari:localhost", "@ola:localhost"
ROOM, KARI_ROOM = "!me:localhost", "!kari:localhost"
LIMITS = Limits(max_contacts=1_000, max_identifiers=1_000, per_user_per_day=5_000,
                per_ip_per_day=5_000, max_upload_bytes=2**20)
PHONE, EMAIL = "+4791234567", "kari.invited@example.no"


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


async def say(text: str, db: Database, discovery: Discovery, *, sender: str = ME,
              room: str = ROOM) -> tuple[str, ContactsContext]:
    async def homeserver_verified(user_id: str) -> set[tuple[Medium, str]]:
        # The homeserver has verified these for everyone here (see test_contacts_commands
        # for the bridge's own codes).
        return {(Medium.PHONE, PHONE), (Medium.PHONE, "+4798765432"), (Medium.EMAIL, EMAIL)}

    ctx = ContactsContext(sender=sender, room_id=room, direct=True, db=db, discovery=discovery,
                          public_url="https://contacts.example.org",
                          homeserver_verified=homeserver_verified)
    outcome = await registry.dispatch(text, ctx)
    assert outcome is not None
    return outcome.reply.text, ctx


def code_of(reply: str) -> str:
    found = re.search(r"https://contacts\.example\.org/invite/([A-Za-z0-9_-]+)", reply)
    assert found, reply
    return found.group(1)


async def test_an_invite_names_the_number_only_as_a_keyed_hash(
        db: Database, discovery: Discovery, tmp_path: Path) -> None:
    reply, ctx = await say("invite +47 912 34 567", db, discovery)
    assert ctx.held_identifier  # the handler redacts the command
    assert "91234567" not in reply and "findable phone" in reply
    invite = await store.invite(db, code_of(reply))
    assert invite is not None and invite.inviter == ME and invite.room_id == ROOM
    assert invite.medium == "msisdn"
    raw = (tmp_path / "contacts.db").read_bytes()
    assert b"91234567" not in raw and b"912 34 567" not in raw


async def test_invited_person_opting_in_converts_the_invite(
        db: Database, discovery: Discovery) -> None:
    phone_code = code_of((await say(f"invite {PHONE}", db, discovery))[0])
    code_of((await say(f"invite {EMAIL.upper()}", db, discovery, sender=OLA,
                       room="!ola:localhost"))[0])
    anonymous = code_of((await say("invite", db, discovery))[0])
    # Someone else opting in with another number converts nothing.
    reply, ctx = await say("findable phone +4798765432", db, discovery, sender=KARI,
                           room=KARI_ROOM)
    assert ctx.converted == [] and "invited" not in reply
    reply, ctx = await say(f"findable phone {PHONE}", db, discovery, sender=KARI,
                           room=KARI_ROOM)
    assert [i.code for i in ctx.converted] == [phone_code]
    assert ctx.converted[0].room_id == ROOM  # where the handler tells the inviter
    assert "https://matrix.to/#/@me:localhost" in reply
    # Again: already converted, nobody is told twice.
    _reply, ctx = await say(f"findable phone {PHONE}", db, discovery, sender=KARI,
                            room=KARI_ROOM)
    assert ctx.converted == []
    _reply, ctx = await say(f"findable email {EMAIL}", db, discovery, sender=KARI,
                            room=KARI_ROOM)
    assert [i.inviter for i in ctx.converted] == [OLA]
    stats = (await store.stats(db))["invites"]
    assert stats == {"created": 3, "named": 2, "opened": 0, "converted": 2, "conversion": 1.0}
    assert (await store.invite(db, anonymous)).converted_user is None  # type: ignore[union-attr]


async def test_inviting_someone_already_here_or_yourself(db: Database,
                                                         discovery: Discovery) -> None:
    await say(f"findable phone {PHONE}", db, discovery, sender=KARI, room=KARI_ROOM)
    reply, _ = await say(f"invite {PHONE}", db, discovery)
    assert "already here" in reply and KARI in reply
    assert (await store.stats(db))["invites"]["created"] == 0
    reply, _ = await say(f"invite {PHONE}", db, discovery, sender=KARI, room=KARI_ROOM)
    assert "That is yours" in reply
    reply, _ = await say("invite not-a-number", db, discovery)
    assert "cannot use that" in reply


async def test_a_users_own_invite_is_not_converted_by_them(db: Database,
                                                           discovery: Discovery) -> None:
    await say(f"invite {PHONE}", db, discovery)
    _reply, ctx = await say(f"findable phone {PHONE}", db, discovery)
    assert ctx.converted == []


async def test_invites_per_day_are_limited(db: Database, discovery: Discovery,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from bridges.contacts import commands
    monkeypatch.setattr(commands, "INVITES_PER_DAY", 2)
    await say("invite", db, discovery)
    await say("invite", db, discovery)
    reply, _ = await say("invite", db, discovery)
    assert "most a day allows" in reply


def test_the_qr_code_is_an_svg_without_the_url_in_clear_text() -> None:
    svg = qr_svg("https://contacts.example.org/invite/abc")
    assert svg.startswith("<svg") and "<path" in svg and "<script" not in svg
    assert "invite/abc" not in svg


# -- pages over HTTP ----------------------------------------------------------------------

@pytest.fixture
async def client(tmp_path: Path, db: Database,
                 discovery: Discovery) -> AsyncIterator[TestClient]:
    config = parse_config({"server_name": "localhost", "public_baseurl": "https://matrix.example.org",
                           "contacts": {"default_region": "NO"}}, base_dir=tmp_path)
    session = aiohttp.ClientSession()
    app = web.Application()
    add_api_routes(app, ApiContext(db, discovery, config, lambda: session))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await session.close()


async def test_the_invite_page(client: TestClient, db: Database, discovery: Discovery) -> None:
    await store.add_invite(db, "abc123", "@me<b>:localhost", ROOM, None, None)
    preview = await client.get("/invite/abc123", headers={"User-Agent": "Synapse (bot; +x)"})
    assert preview.status == 200
    assert (await store.stats(db))["invites"]["opened"] == 0  # a link preview is no person
    resp = await client.get("/invite/abc123", headers={"User-Agent": "Mozilla/5.0"})
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert "@me&lt;b&gt;:localhost invites you" in page  # autoescaped
    assert "<b>" not in page
    assert "https://matrix.example.org" in page
    assert "https://matrix.to/#/@me%3Cb%3E:localhost" in page
    assert "Element" in page and "<svg" in page and "<script" not in page
    assert "http://localhost:8091/invite/abc123" in page
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert (await store.stats(db))["invites"]["opened"] == 1
    missing = await client.get("/invite/nope")
    assert missing.status == 404 and "not known" in await missing.text()


async def test_the_import_page_and_its_script(client: TestClient) -> None:
    resp = await client.get("/import")
    assert resp.status == 200
    page = await resp.text()
    assert 'src="/import.js"' in page and 'value="47"' in page  # default region NO
    assert "connect-src 'self'" in resp.headers["Content-Security-Policy"]
    script = await client.get("/import.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert "crypto.subtle.digest" in await script.text()
    for name in ("import_decoding", "import_csv"):
        module = await client.get(f"/{name}.js")
        assert module.status == 200 and module.content_type == "text/javascript"
        assert f'from "/{name}.js"' in await script.text()
    assert (await client.get("/import_other.js")).status == 404


async def test_the_import_page_reads_files_with_the_bots_rules(client: TestClient) -> None:
    """The header vocabulary is rendered into the page from csv_headers.py (as data, not
    script: the CSP allows no inline script), never a second hand-written copy."""
    resp = await client.get("/import")
    page = await resp.text()
    found = re.search(r'<script type="application/json" id="import-rules">(.*?)</script>',
                      page, re.S)
    assert found, page
    rules = json.loads(found.group(1))
    assert rules == json.loads(json.dumps(page_rules()))
    assert rules["headers"] == json.loads(json.dumps(browser_rules()))
    assert rules["headers"]["names"][normalise("姓名")] == "FULL_NAME"
    assert normalise("手机") in rules["headers"]["phone"]["parts"]
    assert "'unsafe-inline'" not in resp.headers["Content-Security-Policy"].split(
        "script-src")[1].split(";")[0]
    assert "<" not in found.group(1)  # nothing in the data can close the element


async def test_the_import_token_is_short_lived(db: Database, discovery: Discovery,
                                               client: TestClient) -> None:
    reply, _ = await say("import", db, discovery)
    found = re.search(r"/import#token=([A-Za-z0-9_-]+)", reply)
    assert found, reply
    headers = {"Authorization": f"Bearer {found.group(1)}"}
    resp = await client.get("/_matrix/identity/v2/account", headers=headers)
    assert (await resp.json()) == {"user_id": ME}
    await db.execute("UPDATE identity_token SET expires_at=1")
    resp = await client.get("/_matrix/identity/v2/account", headers=headers)
    assert resp.status == 401
    await store.prune_tokens(db)
    assert await db.fetchval("SELECT COUNT(*) FROM identity_token") == 0
