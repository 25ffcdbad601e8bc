"""The shop bot's catalog, campaign and buyer commands, its buttons and product links.

No server: the commerce API is an in-memory stand-in answering like the real one,
and the bot's Matrix client is a recorder, so the tests read what a user would see.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from nio import MemoryDownloadResponse, RoomSendResponse

from bots.shopbot import buttons, campaign_text, catalog_text
from bots.shopbot.api import ApiError
from bots.shopbot.bot import ShopBot
from bots.shopbot.buttons import NO, YES, WaitingCommands, now_ms
from bots.shopbot.commands import registry
from bots.shopbot.context import Attachment, AwaitFile, CardReply, Question, ShopContext
from bots.shopbot.events import caption_of, links_to_answer, reaction_of, replied_to
from mercato.commands import ArgumentError, CommandError, Reply
from mercato.config import parse_config

PUBLIC = "https://shop.example.org"

# -- parsers ----------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "price"), [("19.9", "19.90"), ("19,90", "19.90"),
                                              ("7", "7.00"), ("0", "0.00"), ("19", "19.00"),
                                              ("19.90", "19.90"), ("0,5", "0.50")])
def test_prices_stay_decimal_text(typed: str, price: str) -> None:
    assert catalog_text.parse_price(typed) == price


@pytest.mark.parametrize(("typed", "message"), [
    ("-1", "not a price"), ("abc", "not a price"), ("1.999", "more than two decimals"),
    ("nan", "not a price"), ("inf", "not a price"),
    # The API's rules (mercato/values.py): no sign, no "_", no exponent, digits 0-9.
    ("-0", "'-0' is not a price: prices cannot be negative"),
    ("-0,00", "prices cannot be negative"), ("+5", "without a sign"),
    ("5_0", "'5_0' is not a price; write it like 19.90 or 19,90"),
    ("1e3", "'1e3' is not a price"), ("١٩,٩٠", "with the digits 0-9"),
    ("１９", "with the digits 0-9"), ("1.000,00", "thousands separator")])
def test_bad_prices_say_how_to_write_one(typed: str, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        catalog_text.parse_price(typed)


def test_currency_stock_and_sku() -> None:
    assert catalog_text.parse_currency("eur") == "EUR"
    with pytest.raises(ArgumentError, match="ISO 4217"):
        catalog_text.parse_currency("euro")
    assert catalog_text.parse_stock("out") == "out_of_stock"
    assert catalog_text.parse_stock("in-stock") == "in_stock"
    assert catalog_text.parse_stock("Pre-order") == "preorder"
    with pytest.raises(ArgumentError, match="in_stock, out_of_stock or preorder"):
        catalog_text.parse_stock("maybe")
    with pytest.raises(ArgumentError, match="is not a SKU"):
        catalog_text.parse_sku("-mug")
    assert catalog_text.parse_clearable_price("off") == ""
    assert catalog_text.parse_clearable_url("shop.example/mug") == "https://shop.example/mug"


def test_times_need_their_timezone() -> None:
    assert campaign_text.parse_time("2026-12-01T09:00+01:00") == "2026-12-01T09:00:00+01:00"
    assert campaign_text.parse_time("2026-12-01T08:00Z") == "2026-12-01T08:00:00+00:00"
    assert campaign_text.parse_time("2026-12-01 08:00 UTC") == "2026-12-01T08:00:00+00:00"
    with pytest.raises(ArgumentError, match="with its timezone"):
        campaign_text.parse_time("2026-12-01T09:00")
    with pytest.raises(ArgumentError, match="with its timezone"):
        campaign_text.parse_time("tomorrow")


# -- what the bot reads in events -------------------------------------------------------

def test_product_links_in_a_message() -> None:
    text = (f"look {PUBLIC}/p/green/mug-1 and {PUBLIC}/p/green/mug-1. also "
            f"{PUBLIC}/p/tea-house/tea.9, https://evil.example/p/green/mug-2 "
            f"{PUBLIC}/p/a/b {PUBLIC}/p/c/d")
    assert catalog_text.product_links(text, PUBLIC) == [
        ("green", "mug-1"), ("tea-house", "tea.9"), ("a", "b")]
    assert catalog_text.product_links(text, "") == []


@pytest.mark.parametrize(("content", "links"), [
    ({"msgtype": "m.text", "body": f"{PUBLIC}/p/green/mug-1"}, [("green", "mug-1")]),
    ({"msgtype": "m.notice", "body": f"{PUBLIC}/p/green/mug-1"}, []),
    ({"msgtype": "m.text", "body": f"Mug {PUBLIC}/p/green/mug-1",
      "org.mercato.product": {"sku": "mug-1"}}, []),
    ({"msgtype": "m.text", "body": f"Post {PUBLIC}/p/green/mug-1",
      "org.mercato.post": {"campaign": 1}}, []),
    ({"msgtype": "m.text", "body": f"> <@a:b> {PUBLIC}/p/green/old\n\nthanks"}, []),
])
def test_which_messages_get_a_card(content: dict[str, Any], links: list[Any]) -> None:
    assert links_to_answer(content, PUBLIC) == links


def test_captions_replies_and_reactions() -> None:
    assert caption_of({"msgtype": "m.file", "body": "products import", "filename": "a.csv"}) \
        == "products import"
    assert caption_of({"msgtype": "m.file", "body": "a.csv", "filename": "a.csv"}) is None
    assert caption_of({"msgtype": "m.file", "body": "a.csv"}) is None
    assert replied_to({"m.relates_to": {"m.in_reply_to": {"event_id": "$f"}}}) == "$f"
    assert replied_to({"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}) is None
    assert reaction_of({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$q",
                                         "key": YES}}) == ("$q", YES)
    assert reaction_of({"m.relates_to": {"event_id": "$q"}}) is None


def test_attachments_plain_and_encrypted() -> None:
    plain = Attachment.of({"msgtype": "m.file", "body": "p.csv", "url": "mxc://hs/abc",
                           "info": {"mimetype": "text/csv", "size": 12}})
    assert plain == Attachment("mxc://hs/abc", "p.csv", "text/csv", 12, None)
    secret = {"url": "mxc://hs/enc", "key": {"k": "x"}, "iv": "y", "hashes": {"sha256": "z"}}
    encrypted = Attachment.of({"msgtype": "m.file", "body": "p.csv", "file": secret})
    assert encrypted is not None and encrypted.mxc == "mxc://hs/enc"
    assert encrypted.encryption == secret
    assert Attachment.of({"msgtype": "m.text", "body": "hi"}) is None
    assert Attachment.of({"msgtype": "m.file", "body": "x", "url": "https://x"}) is None


# -- buttons ----------------------------------------------------------------------------

def test_answers_typed_or_reacted() -> None:
    assert buttons.typed_answer("Yes!") is True
    assert buttons.typed_answer(" no ") is False
    assert buttons.typed_answer("yes please send it") is None
    assert buttons.reaction_answer("✅") is True
    assert buttons.reaction_answer("✔️") is True
    assert buttons.reaction_answer(NO) is False
    assert buttons.reaction_answer("🎉") is None
    assert buttons.legend("send it now", "keep it") == \
        "React ✅ to send it now or ❌ to keep it — or type yes or no."


def test_a_question_is_answered_once_by_its_asker_in_time() -> None:
    waiting = WaitingCommands(ttl_ms=1000)
    waiting.ask("!r", "@a:hs", "confirm", "campaign send 7", direct=True,
                command_event_id="$cmd", now=0, question_event_id="$q", declined="not sent")
    assert waiting.answer("!r", "@b:hs", 10) is None  # someone else
    assert waiting.answer("!other", "@a:hs", 10) is None  # another room
    assert waiting.answer("!r", "@a:hs", 10, question_event_id="$old") is None
    assert waiting.take_file("!r", "@a:hs", 10) is None  # not a file question
    taken = waiting.answer("!r", "@a:hs", 10, question_event_id="$q")
    assert taken is not None and taken.command == "campaign send 7"
    assert taken.declined == "not sent"
    assert waiting.answer("!r", "@a:hs", 11) is None  # answered already

    waiting.ask("!r", "@a:hs", "confirm", "x", direct=True, command_event_id="$c", now=0)
    assert waiting.answer("!r", "@a:hs", 1000) is None  # expired


def test_waiting_is_bounded_and_kept_across_restarts() -> None:
    waiting = WaitingCommands(limit=2)
    for k in range(3):
        waiting.ask(f"!r{k}", "@a:hs", "file", "products import", direct=True,
                    command_event_id=f"$c{k}", now=k)
    assert len(waiting) == 2 and waiting.waiting("!r0", "@a:hs", 5) is None
    saved = json.loads(json.dumps(waiting.dump()))
    restored = WaitingCommands()
    restored.load([*saved, {"broken": True}, "junk"], now=5)
    file_wait = restored.take_file("!r2", "@a:hs", 6)
    assert file_wait is not None and file_wait.command_event_id == "$c2"
    restored.load(saved, now=10**12)  # all expired by then
    assert restored.waiting("!r1", "@a:hs", 10**12) is None
    restored.load({"not": "a list"}, now=0)


# -- answers ----------------------------------------------------------------------------

def test_draft_bodies_per_kind() -> None:
    p = "!"
    assert campaign_text.draft_body(campaign_text.DraftInput(
        kind="text", title="Open Sunday", text="10-14"), p) == {
        "kind": "text", "fields": {"title": "Open Sunday", "text": "10-14"}, "silent": False}
    coupon = campaign_text.draft_body(campaign_text.DraftInput(
        kind="coupon", title="5 off", stock_codes=10, expires="2026-12-31T23:59:00+00:00",
        silent=True), p)
    assert coupon["coupon"] == {"stock": 10, "expires_at": "2026-12-31T23:59:00+00:00"}
    assert coupon["silent"] is True
    with pytest.raises(CommandError, match=r"needs --stock-codes 100 and --expires"):
        campaign_text.draft_body(campaign_text.DraftInput(kind="coupon", title="x"), p)
    with pytest.raises(CommandError, match=r"A product post needs --price 19.90 and "
                                           r"--currency EUR\. For example: !campaign draft"):
        campaign_text.draft_body(campaign_text.DraftInput(kind="product", title="x"), p)
    with pytest.raises(CommandError, match="--discount"):
        campaign_text.draft_body(campaign_text.DraftInput(kind="sale", title="x"), p)
    with pytest.raises(CommandError, match="--text"):
        campaign_text.draft_body(campaign_text.DraftInput(kind="text", title="x"), p)


def test_stats_table_and_sparkline() -> None:
    assert campaign_text.sparkline([0, 1, 2, 7]) == "▁▂▃█"
    assert campaign_text.sparkline([3, 3]) == "▄▄"
    reply = campaign_text.stats_reply("green", {
        "followers": 4, "note": "views are approximate",
        "followers_by_day": [{"day": "d1", "followers": 1}, {"day": "d2", "followers": 4}],
        "campaigns": [
            {"id": 2, "kind": "coupon", "title": "5 <b>off</b>", "state": "sent", "reach": 4,
             "views": 3, "reactions": 2, "claims": 2, "redemptions": 1},
            {"id": 1, "kind": "text", "title": "Hello", "state": "draft", "reach": 0,
             "views": 0, "reactions": 0}]})
    assert reply.text.splitlines() == [
        "Stats of green: 4 followers.",
        "Followers, last 2 days: ▁█ (+3)",
        "Campaigns: # title — state — reach / views / reactions / claims / redeemed",
        "2 5 <b>off</b> — sent — 4 / 3 / 2 / 2 / 1",
        "1 Hello — draft — 0 / 0 / 0 / — / —",
        "(views are approximate)"]
    assert "5 &lt;b&gt;off&lt;/b&gt;" in str(reply.html) and "<table>" in str(reply.html)


def test_import_report_lists_refused_rows_and_notes() -> None:
    reply = catalog_text.import_report("green", {
        "format": "shopify", "rows": 5, "imported": 2, "updated": 1, "skipped": 1,
        "refused_count": 1, "warning_count": 1,
        "refused": [{"row": 4, "sku": "bad-1", "reason": "price: must be a price"}],
        "warnings": [{"row": 2, "sku": "mug", "warning": "image not fetched"}]}, "p.csv")
    assert reply.text.splitlines() == [
        "Imported p.csv into green: 5 rows, 2 new, 1 updated, 1 refused, 1 skipped (no "
        "product of their own).",
        "Refused rows:",
        "row 4 (bad-1): price: must be a price",
        "Nothing of a refused row was written. Fix these rows and send the file again: rows "
        "already imported are updated, not doubled.",
        "Note: row 2 (mug): image not fetched"]
    plain = catalog_text.import_report("green", {"rows": 1, "imported": 1, "updated": 0,
                                                 "refused": [], "warnings": ["BOM removed"]},
                                       "p.csv")
    assert plain.text.splitlines()[1:] == ["Note: BOM removed"]


def test_on_sale_picks_real_savings() -> None:
    products = [
        {"sku": "a", "price": "8.00", "original_price": "10.00", "stock": "in_stock"},
        {"sku": "b", "price": "5.00", "original_price": "10.00", "stock": "in_stock"},
        {"sku": "c", "price": "5.00", "original_price": None, "stock": "in_stock"},
        {"sku": "d", "price": "1.00", "original_price": "10.00", "stock": "out_of_stock"}]
    assert [p["sku"] for p in catalog_text.on_sale(products)] == ["b", "a"]


# -- commands against a stand-in API ----------------------------------------------------

class FakeCommerce:
    """Answers like the commerce API for one acting user (refusals included)."""

    def __init__(self, roles: dict[str, str] | None = None) -> None:
        self.roles = roles if roles is not None else {"green": "owner"}
        self.catalog: dict[str, dict[str, Any]] = {}
        self.campaign_rows: dict[int, dict[str, Any]] = {}
        self.sent: list[int] = []
        self.imported: list[tuple[bytes, str | None]] = []
        self.alert_list: list[dict[str, Any]] = []
        self.import_missing = False

    async def my_shops(self) -> list[dict[str, str]]:
        return [{"slug": s, "role": r} for s, r in self.roles.items()]

    async def shop(self, slug: str) -> dict[str, Any]:
        return {"slug": slug, "name": slug.title(), "status": "approved",
                "channels": [f"#shop_{slug}:hs.example"]}

    async def directory(self, query: str = "") -> list[dict[str, Any]]:
        return [{"slug": "green", "name": "Green", "verified": True,
                 "channels": ["#shop_green:hs.example"]},
                {"slug": "grey", "name": "Grey", "verified": False, "channels": []}]

    async def products(self, slug: str, query: str = "", limit: int = 100) -> dict[str, Any]:
        found = [p for p in self.catalog.values() if query in p["sku"] + p["title"]]
        return {"products": found, "total": len(self.catalog)}

    async def product(self, slug: str, sku: str) -> dict[str, Any]:
        if sku not in self.catalog:
            raise ApiError(404, "M_NOT_FOUND", f"There is no product '{sku}' in '{slug}'.")
        return self.catalog[sku]

    async def create_product(self, slug: str, fields: dict[str, Any]) -> dict[str, Any]:
        product = {"stock": "in_stock", "original_price": None, **fields,
                   "page": f"{PUBLIC}/p/{slug}/{fields['sku']}"}
        self.catalog[fields["sku"]] = product
        return product

    async def update_product(self, slug: str, sku: str, changes: dict[str, Any]
                             ) -> dict[str, Any]:
        self.catalog[sku].update(changes)
        return self.catalog[sku]

    async def delete_product(self, slug: str, sku: str) -> None:
        del self.catalog[sku]

    async def import_products(self, slug: str, data: bytes, currency: str | None = None
                              ) -> dict[str, Any]:
        if self.import_missing:
            raise ApiError(404, "M_UNRECOGNIZED", "There is no /api/v1/… in the API")
        self.imported.append((data, currency))
        return {"rows": 2, "imported": 2, "updated": 0, "refused": [], "warnings": []}

    async def card(self, slug: str, sku: str) -> dict[str, Any]:
        return {"msgtype": "m.text", "body": f"Card of {sku}",
                "org.mercato.product": {"sku": sku, "shop_slug": slug}}

    async def add_alert(self, slug: str, sku: str) -> dict[str, Any]:
        self.alert_list.append({"merchant_slug": slug, "sku": sku, "price": "9.00",
                                "notified_at": None})
        return {"sku": sku, "price": "9.00", "currency": "EUR"}

    async def alerts(self) -> list[dict[str, Any]]:
        return self.alert_list

    async def create_campaign(self, slug: str, draft: dict[str, Any]) -> dict[str, Any]:
        cid = len(self.campaign_rows) + 1
        row = {"id": cid, "kind": draft["kind"], "fields": draft["fields"], "state": "draft",
               "coupon_id": 40 + cid if draft["kind"] == "coupon" else None,
               "image_mxc": draft.get("image_mxc"), "draft": draft}
        self.campaign_rows[cid] = row
        return row

    async def campaigns(self, slug: str) -> list[dict[str, Any]]:
        return list(reversed(self.campaign_rows.values()))

    async def campaign(self, slug: str, cid: int) -> dict[str, Any]:
        return self.campaign_rows[cid]

    async def schedule_campaign(self, slug: str, cid: int, at: str | None = None
                                ) -> dict[str, Any]:
        self.sent.append(cid)
        row = self.campaign_rows[cid]
        row["state"] = "scheduled"
        row["scheduled_at"] = 1_800_000_000_000
        return row

    async def upload_image(self, slug: str, image: bytes, mimetype: str) -> dict[str, Any]:
        return {"image_mxc": "mxc://hs/uploaded", "image_info": {"mimetype": mimetype}}

    async def stats(self, slug: str) -> dict[str, Any]:
        return {"followers": 3, "followers_by_day": [], "campaigns": [
            {"id": c["id"], "kind": c["kind"], "title": c["fields"]["title"],
             "state": c["state"], "reach": 3, "claims": 2, "redemptions": 1}
            for c in self.campaign_rows.values()]}

    async def redeem(self, slug: str, code: str) -> dict[str, Any]:
        if code != "ABCDEFGHJK":
            raise ApiError(404, "MERCATO_CODE_UNKNOWN", f"{code} is not a code of this shop.")
        return {"code": code, "coupon": 41, "title": "5 off", "user_id": "@b:hs"}

    async def claim(self, coupon: int) -> dict[str, Any]:
        return {"coupon": coupon, "title": "5 off", "sent_by_dm": True}


class FakeMatrix:
    def __init__(self, files: dict[str, Attachment] | None = None) -> None:
        self.files = files or {}

    async def download(self, attachment: Attachment) -> bytes:
        return b"sku,title,price\nmug,Mug,9\n"

    async def attachment_of(self, room_id: str, event_id: str) -> Attachment | None:
        return self.files.get(event_id)


async def run(body: str, api: FakeCommerce, **context: Any) -> Reply:
    ctx = ShopContext(sender="@o:hs", direct=context.pop("direct", True),
                      api=api,  # type: ignore[arg-type]
                      matrix=context.pop("matrix", FakeMatrix()), public_url=PUBLIC, **context)
    outcome = await registry.dispatch(body, ctx)
    assert outcome is not None
    return outcome.reply


async def test_products_add_list_edit() -> None:
    api = FakeCommerce()
    added = await run("products add mug-1 24,5 eur Stoneware mug --description Holds 350 ml "
                      "--stock preorder", api)
    assert added.text.splitlines() == [
        "Added mug-1 — Stoneware mug — 24.50 EUR — pre-order in green.",
        f"Its page: {PUBLIC}/p/green/mug-1",
        "A card to forward: share green mug-1"]
    assert api.catalog["mug-1"]["description"] == "Holds 350 ml"
    listed = await run("products", api)
    assert listed.text.splitlines()[:2] == ["Products of green (1 in all):",
                                            "mug-1 — Stoneware mug — 24.50 EUR — pre-order"]
    changed = await run("products edit mug-1 --price 19.90 --original-price 24.50", api)
    assert changed.text.startswith("Changed: mug-1 — Stoneware mug — 19.90 EUR (was 24.50)")
    usage = await run("products edit mug-1", api)
    assert usage.text.startswith("Say what changes, for example --price 19.90")
    assert "Usage: products edit <sku>" in usage.text
    bad = await run("products add mug-2 cheap EUR Mug", api)
    assert bad.text.startswith("<price>: 'cheap' is not a price; write it like 19.90")


async def test_roles_that_cannot_edit_the_catalog_are_told_early() -> None:
    text = (await run("products add mug-1 1 EUR Mug", FakeCommerce({"green": "support"}))).text
    assert text == ("products add is for the shop's owners and editors of 'green'; your role "
                    "there is support. Ask an owner to change it (staff add).")
    text = (await run("!products add mug-1 1 EUR Mug", FakeCommerce({"green": "support"}),
                      direct=False)).text
    assert text.startswith("!products add is for the shop's owners and editors of 'green'")
    assert text.endswith("(!staff add).")
    analyst = FakeCommerce({"green": "analyst"})
    assert (await run("stats", analyst)).text.startswith("Stats of green: 3 followers.")


async def test_remove_asks_first() -> None:
    api = FakeCommerce()
    await run("products add mug-1 5 EUR Mug", api)
    question = await run("products remove mug-1", api)
    assert isinstance(question, Question)
    assert question.text.endswith("React ✅ to remove it or ❌ to keep it — or type yes or no.")
    assert question.declined == "OK, mug-1 stays in the catalog of green."
    assert "mug-1" in api.catalog
    done = await run("products remove mug-1", api, confirmed=True)
    assert done.text == "Removed mug-1 “Mug” from green." and api.catalog == {}
    missing = await run("products remove mug-1 --yes", api)
    assert missing.text == "There is no product 'mug-1' in 'green'."


async def test_import_waits_for_the_file_then_reports() -> None:
    api = FakeCommerce()
    waiting = await run("products import --currency eur", api)
    assert isinstance(waiting, AwaitFile) and "Send me the CSV file now" in waiting.text
    csv = Attachment("mxc://hs/f", "products.csv", "text/csv", 30)
    report = await run("products import --currency eur", api, attachment=csv)
    assert report.text.startswith("Imported products.csv into green: 2 rows, 2 new")
    assert api.imported == [(b"sku,title,price\nmug,Mug,9\n", "EUR")]
    # A reply to the file works too.
    replied = await run("products import", api, replied_to="$file",
                        matrix=FakeMatrix({"$file": csv}))
    assert replied.text.startswith("Imported products.csv")
    image = Attachment("mxc://hs/i", "cat.png", "image/png", 30)
    assert (await run("products import", api, attachment=image)).text.startswith(
        "cat.png is not a CSV file.")
    assert (await run("!products import", api, direct=False)).text.startswith(
        "!products import works only in a direct chat")
    api.import_missing = True
    assert (await run("products import", api, attachment=csv)).text.startswith(
        "Importing a CSV file is not available on this Mercato server yet, so nothing was "
        "imported.")


async def test_campaign_draft_send_and_coupon_status() -> None:
    api = FakeCommerce()
    drafted = await run("campaign draft text Open Sunday --text We open 10:00-14:00", api)
    assert drafted.text.startswith("Draft 1 — text — “Open Sunday” — draft in green.")
    assert api.campaign_rows[1]["fields"] == {"title": "Open Sunday",
                                              "text": "We open 10:00-14:00"}
    question = await run("campaign send 1", api)
    assert isinstance(question, Question) and api.sent == []
    assert question.text.startswith("Send 1 — text — “Open Sunday” — draft to every follower")
    sent = await run("campaign send 1", api, confirmed=True)
    assert sent.text.startswith("Campaign 1 of green is on its way") and api.sent == [1]
    api.campaign_rows[1]["state"] = "sent"
    refused = await run("campaign send 1 --yes", api)
    assert refused.text == ("Campaign 1 is sent; only drafts and scheduled campaigns can be "
                            "sent.")

    coupon = await run("campaign draft coupon 5 off --stock-codes 50 --expires "
                       "2026-12-31T23:59Z", api)
    assert "Followers will claim it as coupon 42 (react 🎟️ or claim 42)." in coupon.text
    assert api.campaign_rows[2]["draft"]["coupon"] == {
        "stock": 50, "expires_at": "2026-12-31T23:59:00+00:00"}
    status = await run("coupon status 42", api)
    assert status.text.splitlines()[:2] == [
        "Coupon 42 of green: “5 off”, campaign 2 (draft).",
        "2 codes claimed, 1 redeemed; the post reached 3 followers."]
    assert (await run("coupon status 9", api)).text.startswith("green has no coupon 9.")
    scheduled = await run("campaign schedule 2 2027-01-15T09:00+01:00", api)
    assert scheduled.text.startswith("Campaign 2 of green is scheduled for 2027-01-15 08:00 UTC")
    listed = await run("campaign list", api)
    assert listed.text.splitlines()[0] == "Campaigns of green, newest first:"


async def test_a_draft_takes_the_image_it_replies_to() -> None:
    api = FakeCommerce()
    picture = Attachment("mxc://hs/pic", "mug.png", "image/png", 100)
    await run("campaign draft product New mug --price 24 --currency EUR", api,
              replied_to="$img", matrix=FakeMatrix({"$img": picture}))
    assert api.campaign_rows[1]["image_mxc"] == "mxc://hs/uploaded"


async def test_redeem_and_claim() -> None:
    api = FakeCommerce()
    assert (await run("redeem ABCDEFGHJK", api)).text.startswith(
        "✅ ABCDEFGHJK redeemed: “5 off” (coupon 41), claimed by @b:hs.")
    assert (await run("redeem NOPE", api)).text == "NOPE is not a code of this shop."
    assert (await run("claim 41", FakeCommerce({}))).text.startswith(
        "🎟️ Coupon 41 “5 off” is yours. The shop sends your personal code by direct message")


async def test_buyers_follow_share_alert_and_find_deals() -> None:
    api = FakeCommerce({})
    follow = await run("follow green", api)
    assert follow.text.startswith("To follow Green, join its channel #shop_green:hs.example: "
                                  "open https://matrix.to/#/%23shop_green%3Ahs.example")
    assert 'href="https://matrix.to/#/%23shop_green%3Ahs.example"' in str(follow.html)
    assert "leave its channel #shop_green:hs.example" in (await run("unfollow green", api)).text
    card = await run("share green mug-1", api)
    assert isinstance(card, CardReply)
    assert card.content["org.mercato.product"]["sku"] == "mug-1"
    assert (await run("alert green mug-1", api)).text.startswith(
        "🔔 Alert set on mug-1 of green (now 9.00 EUR).")
    assert (await run("alerts", api)).text.splitlines()[1] == \
        "green mug-1 — set at 9.00 — waiting"
    deals = await run("deals", api)
    assert deals.text.splitlines()[1] == \
        "✓ Green (green) — #shop_green:hs.example https://matrix.to/#/%23shop_green%3Ahs.example"
    assert "Grey" not in deals.text


# -- the bot's event handling, with a recording Matrix client ---------------------------

class RecordingClient:
    """Stands in for nio's client: records what the bot sends, serves one file."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any], str]] = []
        self.rooms: dict[str, Any] = {}

    async def room_send(self, room_id: str, event_type: str, content: dict[str, Any],
                        tx_id: str = "", ignore_unverified_devices: bool = False) -> Any:
        self.sent.append((room_id, event_type, content, tx_id))
        return RoomSendResponse(f"$sent{len(self.sent)}", room_id)

    async def download(self, mxc: str) -> Any:
        return MemoryDownloadResponse(b"sku,title,price\n", "text/csv", "p.csv")

    async def room_get_event(self, room_id: str, event_id: str) -> Any:
        return SimpleNamespace(event=SimpleNamespace(source={"content": {}}))


class FakeApiRoot:
    def __init__(self, commerce: FakeCommerce) -> None:
        self.commerce = commerce

    def as_user(self, user_id: str, *, before_write: Any = None) -> FakeCommerce:
        return self.commerce


@pytest.fixture
def bot(tmp_path: Any) -> ShopBot:
    config = parse_config({"data_dir": str(tmp_path), "commerce": {"public_url": PUBLIC}})
    shop_bot = ShopBot(config)
    shop_bot.client = RecordingClient()  # type: ignore[assignment]
    shop_bot.api = FakeApiRoot(FakeCommerce())  # type: ignore[assignment]
    return shop_bot


def message(event_id: str, content: dict[str, Any], sender: str = "@o:hs",
            kind: str = "m.room.message") -> dict[str, Any]:
    return {"type": kind, "event_id": event_id, "sender": sender, "content": content}


def text(body: str) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body}


async def test_a_question_gets_buttons_and_a_reaction_runs_the_command(bot: ShopBot) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    commerce: FakeCommerce = bot.api.commerce  # type: ignore[union-attr]
    await commerce.create_campaign("green", {"kind": "text", "fields": {"title": "Hi"}})
    await bot._on_event("!dm", message("$cmd", text("campaign send 1")), direct=True)
    (room, kind, question, txn), *seeds = client.sent
    assert question["msgtype"] == "m.notice" and "React ✅ to send it now" in question["body"]
    assert question["m.relates_to"] == {"m.in_reply_to": {"event_id": "$cmd"}}
    assert [(k, c["m.relates_to"]["key"], c["m.relates_to"]["event_id"])
            for _, k, c, _ in seeds] == [("m.reaction", YES, "$sent1"),
                                         ("m.reaction", NO, "$sent1")]
    # The state survives a restart: saved with the sync token once the batch is handled.
    bot._batch_done("s1")
    saved = json.loads((bot.state_dir / "session.json").read_text())
    assert saved["since"] == "s1" and saved["waiting"][0]["command"] == "campaign send 1"
    assert ShopBot(bot.config).waiting.waiting("!dm", "@o:hs", now_ms()) is not None

    # Someone else's ✅, or a ✅ on another event, does nothing.
    yes_elsewhere = {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$x", "key": YES}}
    await bot._on_event("!dm", message("$r0", yes_elsewhere, kind="m.reaction"), direct=True)
    yes = {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$sent1", "key": YES}}
    await bot._on_event("!dm", message("$r1", yes, sender="@b:hs", kind="m.reaction"),
                        direct=True)
    assert commerce.sent == [] and len(client.sent) == 3

    await bot._on_event("!dm", message("$r2", yes, kind="m.reaction"), direct=True)
    assert commerce.sent == [1]
    _, _, done, txn = client.sent[-1]
    assert done["body"].startswith("Campaign 1 of green is on its way")
    assert done["m.relates_to"] == {"m.in_reply_to": {"event_id": "$cmd"}}
    assert txn == "reply.$r2"
    # Answered once: the same reaction again (or a yes) finds nothing waiting.
    await bot._on_event("!dm", message("$r3", yes, kind="m.reaction"), direct=True)
    await bot._on_event("!dm", message("$y", text("yes")), direct=True)
    assert commerce.sent == [1]
    assert client.sent[-1][2]["body"].startswith("Nothing is waiting for a yes or no")


async def test_a_typed_no_declines(bot: ShopBot) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    commerce: FakeCommerce = bot.api.commerce  # type: ignore[union-attr]
    await commerce.create_product("green", {"sku": "mug", "title": "Mug", "price": "1.00",
                                            "currency": "EUR"})
    await bot._on_event("!g", message("$cmd", text("!products remove mug")), direct=False)
    await bot._on_event("!g", message("$n", text("No")), direct=False)
    assert "mug" in commerce.catalog
    assert client.sent[-1][2]["body"] == "OK, mug stays in the catalog of green."


async def test_a_file_completes_the_import_that_asked_for_it(bot: ShopBot) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    commerce: FakeCommerce = bot.api.commerce  # type: ignore[union-attr]
    await bot._on_event("!dm", message("$cmd", text("products import")), direct=True)
    assert "Send me the CSV file now" in client.sent[-1][2]["body"]
    csv = {"msgtype": "m.file", "body": "p.csv", "url": "mxc://hs/f",
           "info": {"mimetype": "text/csv", "size": 16}}
    await bot._on_event("!dm", message("$file", csv), direct=True)
    assert commerce.imported == [(b"sku,title,price\n", None)]
    _, _, report, txn = client.sent[-1]
    assert report["body"].startswith("Imported p.csv into green")
    assert txn == "reply.$file"
    # With a caption, the file carries its own command.
    await bot._on_event("!dm", message("$file2", {**csv, "filename": "p.csv",
                                                  "body": "products import --currency USD"}),
                        direct=True)
    assert commerce.imported[-1][1] == "USD"
    # A no stops the wait for a file.
    await bot._on_event("!dm", message("$cmd2", text("products import")), direct=True)
    await bot._on_event("!dm", message("$no", text("no")), direct=True)
    assert client.sent[-1][2]["body"] == \
        "OK, I no longer wait for a file for “products import”."
    await bot._on_event("!dm", message("$file3", csv), direct=True)
    assert len(commerce.imported) == 2


async def test_pasted_links_get_cards_but_cards_and_notices_do_not(bot: ShopBot) -> None:
    client: RecordingClient = bot.client  # type: ignore[assignment]
    await bot._on_event("!g", message("$l", text(f"see {PUBLIC}/p/green/mug-1 !")),
                        direct=False)
    (_, kind, card, txn), = client.sent
    assert kind == "m.room.message" and card["org.mercato.product"]["sku"] == "mug-1"
    assert card["m.relates_to"] == {"m.in_reply_to": {"event_id": "$l"}}
    assert txn == "card.$l.0"
    await bot._on_event("!g", message("$c", {**card, "body": f"{PUBLIC}/p/green/mug-1"},
                                      sender="@shop_green:hs"), direct=False)
    await bot._on_event("!g", message("$n", {"msgtype": "m.notice",
                                             "body": f"{PUBLIC}/p/green/mug-1"}),
                        direct=False)
    assert len(client.sent) == 1
    # A command that contains a link is a command.
    await bot._on_event("!dm", message("$s", text("share green mug-2")), direct=True)
    assert client.sent[-1][2]["org.mercato.product"]["sku"] == "mug-2"
    assert "m.relates_to" not in client.sent[-1][2]  # forwarded as is
