"""Fuzzing the parsers and renderers with hypothesis (issue 11, Security). No network.

- The shop bot's command parser and dispatcher: arbitrary text raises nothing but the
  framework's user-facing errors, and dispatch never ends in "failed on my side".
- Product cards and campaign posts: for arbitrary text, `formatted_body` holds only the
  Matrix allowlist's tags and attributes and no javascript:/data: links; the largest
  allowed fields keep the event (and its m.replace edit) under Matrix's 64 KiB.
- The catalog CSV importer: arbitrary bytes, and arbitrary CSV text in several
  encodings, give a report or a file-level refusal (InvalidInput), never a crash; the
  products written are exactly the ones the report counts.
- The core's value rules: any text is plain text without invisible controls, or refused;
  any input is a price of ASCII digits and two decimals, or refused.
- The contacts importers: arbitrary bytes never raise (but ImportFailed) and every phone
  number they return is E.164.
- The text decoder both use: arbitrary bytes, pushed or pulled, name an encoding or are
  refused as no text, quickly; Windows-1252 European text is never taken for Chinese.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import re
import time
import unicodedata
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from appservices.commerce.campaigns import rules as campaigns
from appservices.commerce.catalog import products
from appservices.commerce.catalog.import_file import CatalogFile
from appservices.commerce.catalog.importing import import_catalog
from appservices.commerce.catalog.products import Product
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.errors import InvalidInput
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal
from bots.shopbot.commands import ShopContext, registry
from bridges.contacts.importers import ImportFailed, read_all
from mercato.commands import CommandError, Outcome
from mercato.db import Database, open_database
from mercato.matrix.html import MATRIX_ATTRIBUTES, MATRIX_TAGS, URL_SCHEMES
from mercato.text_decoding import LineReader, NotText, open_text, sniff_encoding
from mercato.types import MerchantSlug, UserID
from mercato.values import InvalidValue, parse_money, plain_text

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
MATRIX_EVENT_LIMIT = 64 * 1024
ENVELOPE = 1024  # room_id, sender, event_id, signatures, hashes… around the content
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")

# Text that tends to break things: markup, quotes, URLs, controls, astral characters.
HOSTILE = st.sampled_from([
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=", "\"><svg onload=alert(1)>", "&lt;b&gt;", "&#106;",
    "<a href=\"javascript:alert(1)\">x</a>", "<mx-reply>", "</p>", "<!--", "]]>", "'", "\"",
    "\u202e", "\u0000", "\ud7ff", "𝕏", "👩‍👩‍👧", "https://evil.example/", "www.evil.example",
    "\r\n", "\t", "!", "--", "—", "“", "”", "„", "\\", "%", "{{ 7*7 }}", "{% raw %}",
    "<div>" * 101, "<blockquote>" * 101,
])
TEXT = st.one_of(st.text(max_size=300),
                 st.lists(st.one_of(HOSTILE, st.text(max_size=20)), max_size=12).map("".join))


# -- the command parser ----------------------------------------------------------------------

COMMAND_WORDS = sorted({word for c in registry.commands() for word in c.path.split()})
OPTIONS = ["--shop", "--yes", "--at", "--price", "--currency", "--", "--shop=x", "—shop"]


@st.composite
def command_lines(draw: st.DrawFn) -> str:
    """Mostly well-shaped lines (prefix, known words, options, quotes) with hostile bits."""
    prefix = draw(st.sampled_from(["!", "", " !", "!!", "！", "/"]))
    command = draw(st.sampled_from([c.path for c in registry.commands()]))
    words = draw(st.lists(st.one_of(st.sampled_from(COMMAND_WORDS + OPTIONS), HOSTILE,
                                    st.text(max_size=15),
                                    st.integers(-10**20, 10**20).map(str)), max_size=8))
    spacing = draw(st.sampled_from([" ", "  ", "\n", "\t", " \u00a0"]))
    return prefix + spacing.join([command, *words])


def _parse(body: str, direct: bool) -> None:
    try:
        registry.parse(body, direct=direct)
    except CommandError as e:  # UsageError is one: what the user sees
        assert isinstance(e.message, str) and e.message


@FUZZ
@given(body=st.one_of(st.text(), TEXT, command_lines()), direct=st.booleans())
def test_the_command_parser_raises_only_usage_errors(body: str, direct: bool) -> None:
    _parse(body, direct)


def _dispatch(body: str, direct: bool) -> Outcome | None:
    # No API and no Matrix connection: a handler that gets that far answers with the
    # CommandError of ShopContext.commerce; only a crash reads "failed on my side".
    ctx = ShopContext(sender="@fuzz:localhost", room_id="!room:localhost", direct=direct)
    return asyncio.run(registry.dispatch(body, ctx))


@FUZZ
@given(body=st.one_of(TEXT, command_lines()), direct=st.booleans())
def test_dispatch_answers_every_line_without_crashing(body: str, direct: bool) -> None:
    outcome = _dispatch(body, direct)
    if outcome is None:
        return
    assert isinstance(outcome.reply.text, str) and outcome.reply.text
    assert "failed on my side" not in outcome.reply.text, (body, outcome)


# -- cards and posts ---------------------------------------------------------------------------

class _Markup(HTMLParser):
    """Every tag and attribute of a formatted_body, as a browser-like parser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _scheme(url: str) -> str | None:
    # Browsers drop whitespace and control characters inside a scheme ("java\tscript:").
    squeezed = re.sub(r"[\x00-\x20\x7f]+", "", html.unescape(url)).lower()
    match = re.match(r"^([a-z][a-z0-9+.-]*):", squeezed)
    return match.group(1) if match else None


def assert_safe_html(formatted: str) -> None:
    parser = _Markup()
    parser.feed(formatted)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in MATRIX_TAGS, (tag, formatted)
        allowed = MATRIX_ATTRIBUTES.get(tag, set()) | ({"rel"} if tag == "a" else set())
        for name, value in attrs:
            assert name in allowed, (tag, name, formatted)
            assert not name.startswith("on"), formatted
            if name in ("href", "src") and value is not None:
                scheme = _scheme(value)
                assert scheme not in ("javascript", "data", "vbscript"), formatted
                assert scheme is None or scheme in URL_SCHEMES, formatted
                if tag == "img":
                    assert value.startswith("mxc://"), formatted
    assert "<script" not in formatted.lower() and "<mx-reply" not in formatted.lower()


def _size(content: dict[str, Any]) -> int:
    return len(json.dumps(content, ensure_ascii=False).encode("utf-8"))


def product(**fields: Any) -> Product:
    base: dict[str, Any] = {
        "merchant_slug": "demo", "sku": "mug-1", "title": "Mug", "description": "",
        "price": "9.00", "currency": "EUR", "original_price": None, "image_mxc": "",
        "image_info": {}, "url": "", "stock": "in_stock", "tags": []}
    return Product(**{**base, **fields})


@FUZZ
@given(title=TEXT, description=TEXT, url=TEXT, shop_name=TEXT, sku=TEXT, tags=st.lists(TEXT,
       max_size=3), stock=st.sampled_from(products.STOCK_STATES), verified=st.booleans(),
       on_sale=st.booleans(), image=st.booleans())
def test_cards_keep_to_the_allowlist(title: str, description: str, url: str, shop_name: str,
                                     sku: str, tags: list[str], stock: str, verified: bool,
                                     on_sale: bool, image: bool) -> None:
    item = product(title=title, description=description, url=url, tags=tags, stock=stock,
                   sku=sku, original_price="19.00" if on_sale else None,
                   image_mxc="mxc://localhost/abc" if image else "",
                   image_info={"mimetype": "image/png"} if image else {})
    page = products.product_page_url("https://mercato.example", "demo", sku)
    content = products.render_card(item, shop_name=shop_name, shop_mxid="@shop_demo:localhost",
                                   verified=verified, page_url=page)
    assert_safe_html(content["formatted_body"])
    assert_safe_html(products.edit_content(content, "$event")["formatted_body"])


@FUZZ
@given(kind=st.sampled_from(campaigns.KINDS), title=TEXT, text=TEXT, link=TEXT,
       discount=TEXT, ends=TEXT, shop_name=TEXT, coupon=st.booleans(), silent=st.booleans(),
       verified=st.booleans())
def test_posts_keep_to_the_allowlist(kind: str, title: str, text: str, link: str,
                                     discount: str, ends: str, shop_name: str, coupon: bool,
                                     silent: bool, verified: bool) -> None:
    fields = {"title": title, "text": text, "link": link, "discount": discount, "ends": ends,
              "price": "9.00", "currency": "EUR"}
    post = campaigns.render_post(
        kind, fields, shop_name=shop_name, shop_mxid="@shop_demo:localhost", verified=verified,
        campaign_id=7, silent=silent,
        coupon={"id": 3, "stock": 10, "title": title, "expires": "2030-01-01 00:00 UTC"}
        if coupon else None)
    assert_safe_html(post["formatted_body"])
    assert_safe_html(campaigns.preview_content(post, 7)["formatted_body"])


# The widest characters each field allows: 4-byte UTF-8, and ASCII that escaping widens.
WIDE = st.sampled_from(["𝕏", "&", "\"", "'", "\\", "é", "中", "😀"])


@FUZZ
@given(wide=WIDE, image=st.booleans())
def test_the_largest_card_and_its_edit_stay_under_64_kib(wide: str, image: bool) -> None:
    def longest(limit: int) -> str:
        return (wide * limit)[:limit]

    item = products.validate_product({
        "sku": "S" * 64, "title": longest(products.MAX_TITLE),
        "description": longest(products.MAX_DESCRIPTION), "price": "999999999.99",
        "currency": "EUR", "original_price": "1000000000.00",
        "url": "https://shop.example/" + "a" * 478,
        "image_mxc": "mxc://localhost/" + "a" * 64 if image else "",
        "image_info": {"mimetype": "image/png", "filename": "f" * 1900} if image else {},
        "tags": [f"{i:02d}" + longest(38) for i in range(products.MAX_TAGS)]})
    card = products.render_card(
        product(merchant_slug="s" * 32, **item), shop_name=longest(64),
        shop_mxid="@shop_" + "s" * 32 + ":localhost", verified=True,
        page_url=products.product_page_url("https://mercato.example", "s" * 32, "S" * 64))
    assert _size(card) + ENVELOPE < MATRIX_EVENT_LIMIT, _size(card)
    edit = products.edit_content(card, "$" + "e" * 43)
    assert _size(edit) + ENVELOPE < MATRIX_EVENT_LIMIT, _size(edit)


@FUZZ
@given(wide=WIDE, kind=st.sampled_from(campaigns.KINDS), coupon=st.booleans())
def test_the_largest_post_and_its_preview_stay_under_64_kib(wide: str, kind: str,
                                                            coupon: bool) -> None:
    def longest(limit: int) -> str:
        return (wide * limit)[:limit]

    fields = campaigns.validate_fields(kind, {
        "title": longest(120), "text": longest(2000), "link": "https://shop.example/" + "a" * 279,
        "discount": longest(60), "ends": longest(60), "price": "999999999.99",
        "currency": "EUR"})
    post = campaigns.render_post(
        kind, fields, shop_name=longest(64), shop_mxid="@shop_" + "s" * 32 + ":localhost",
        verified=True, campaign_id=2**31, image_mxc="mxc://localhost/" + "a" * 64,
        image_info={"mimetype": "image/png", "filename": "f" * 1900},
        coupon={"id": 2**31, "stock": 10_000, "title": longest(120),
                "expires": "2030-01-01 00:00 UTC"} if coupon else None)
    assert _size(post) + ENVELOPE < MATRIX_EVENT_LIMIT, _size(post)
    preview = campaigns.preview_content(post, 2**31)
    assert _size(preview) + ENVELOPE < MATRIX_EVENT_LIMIT, _size(preview)


# -- the catalog CSV importer -------------------------------------------------------------------

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "gb18030", "gbk", "cp1252",
             "latin-1", "shift_jis", "big5"]
HEADERS = [
    ["sku", "title", "price", "currency", "description", "stock", "tags", "image_url"],
    ["Handle", "Title", "Body (HTML)", "Variant SKU", "Variant Price", "Image Src",
     "Variant Inventory Qty", "Status"],
    ["ID", "Type", "SKU", "Name", "Published", "Regular price", "Sale price", "Description",
     "Images", "In stock?", "Stock"],
]
CELL = st.one_of(TEXT, st.sampled_from(["", "9.99", "-1", "1e9", "NaN", "EUR", "usd", "€",
                                        "in_stock", "1,5", "=HYPERLINK(\"x\")", "\"", "\"\"",
                                        "https://img.example/a.png", "file:///etc/passwd",
                                        "<p>hi</p>", "0", "999999999999"]))


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    header = draw(st.sampled_from(HEADERS))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=len(header) + 2), max_size=8))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=draw(
        st.sampled_from(["\n", "\r\n", "\r"])))
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    if draw(st.booleans()):  # break the quoting somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["\"", "\n", "\x00", ",\"", "\r"])) + text[at:]
    return text


def _encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def _read_catalog(data: bytes, currency: str | None) -> None:
    try:
        catalog = CatalogFile(io.BytesIO(data), default_currency=currency)
    except InvalidInput:
        return  # the whole file refused, with a reason (400 from the API)
    for row in catalog:
        assert row.refused or row.fields is not None or not row.sku or row.warnings is not None


@FUZZ
@given(data=st.binary(max_size=4096), currency=st.sampled_from([None, "EUR", "usd"]))
def test_the_catalog_reader_takes_any_bytes(data: bytes, currency: str | None) -> None:
    _read_catalog(data, currency)


@FUZZ
@given(data=st.binary(max_size=2048), header=st.sampled_from(HEADERS))
def test_the_catalog_reader_takes_any_bytes_after_a_good_header(data: bytes,
                                                               header: list[str]) -> None:
    _read_catalog((",".join(header) + "\n").encode() + data, "EUR")


@FUZZ
@given(text=csv_texts(), encoding=st.sampled_from(ENCODINGS),
       currency=st.sampled_from([None, "EUR"]))
def test_the_catalog_reader_takes_any_csv_in_any_encoding(text: str, encoding: str,
                                                          currency: str | None) -> None:
    _read_catalog(_encoded(text, encoding), currency)


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[asyncio.AbstractEventLoop, Database]]:
    loop = asyncio.new_event_loop()
    path: Path = tmp_path_factory.mktemp("fuzz-catalog") / "commerce.db"
    database = open_database(f"sqlite:{path}", upgrade_table, "commerce")
    loop.run_until_complete(database.start())
    loop.run_until_complete(store.insert_merchant(database, store.Merchant(
        slug=MerchantSlug("demo"), name="Demo", description="", website="https://shop.example",
        mxid=UserID("@shop_demo:localhost"), owner_mxid=UserID("@owner:localhost"),
        status="approved", created_at=1_700_000_000_000)))
    try:
        yield loop, database
    finally:
        loop.run_until_complete(database.stop())
        loop.close()


@FUZZ
@given(text=csv_texts(), encoding=st.sampled_from(ENCODINGS))
def test_a_fuzzed_import_writes_exactly_what_it_reports(
        catalog_db: tuple[asyncio.AbstractEventLoop, Database], text: str,
        encoding: str) -> None:
    loop, db = catalog_db
    data = _encoded(text, encoding)
    assume(data.strip())

    async def run() -> None:
        before = await db.fetchval("SELECT COUNT(*) FROM product WHERE merchant_slug='demo'")
        try:
            report = await import_catalog(db, Principal(kind="operator"), "demo",
                                          io.BytesIO(data), default_currency="EUR")
        except InvalidInput:
            after = await db.fetchval("SELECT COUNT(*) FROM product WHERE merchant_slug='demo'")
            assert after == before, "a refused file wrote products"
            return
        after = await db.fetchval("SELECT COUNT(*) FROM product WHERE merchant_slug='demo'")
        assert after - before == report.imported, (report.to_json(), before, after)
        assert report.rows >= report.imported + report.updated + report.refused_count
        json.dumps(report.to_json())  # the API can answer with it

    loop.run_until_complete(run())


# -- the core's value rules (mercato/values.py) -------------------------------------------------

REFUSED_CATEGORIES = ("Cc", "Cs", "Cf")
SEEN_FORMAT = "\u200c\u200d\u200e\u200f\u061c"  # joiners and direction marks stay


@FUZZ
@given(text=TEXT)
def test_plain_text_refuses_or_keeps_only_visible_text(text: str) -> None:
    try:
        kept = plain_text("title", text, 1000)
    except InvalidValue as e:
        assert e.field == "title" and e.message.startswith("title: ")
        return
    for ch in kept:
        category = unicodedata.category(ch)
        assert category not in REFUSED_CATEGORIES or ch in "\n\t" + SEEN_FORMAT or (
            0xE0020 <= ord(ch) <= 0xE007F), (kept, hex(ord(ch)))


@FUZZ
@given(typed=st.one_of(st.text(max_size=20), st.from_regex(r"\A[-+]?[0-9_., e]{0,12}\Z"),
                       st.integers(), st.floats(), st.booleans(), st.none()),
       comma=st.booleans())
def test_a_price_is_digits_and_two_decimals_or_refused(typed: Any, comma: bool) -> None:
    try:
        price = parse_money("price", typed, decimal_comma=comma)
    except InvalidValue as e:
        assert e.field == "price"
        return
    assert isinstance(typed, str)
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", price), price
    assert price == f"{Decimal(typed.strip().replace(',', '.')):.2f}"


# -- the contacts importers ---------------------------------------------------------------------

PHONE = st.one_of(
    st.from_regex(r"\A[+0-9 ()./-]{0,25}\Z", fullmatch=True),
    st.sampled_from(["+4741234567", "0041 44 668 18 00", "+1 (202) 555-0143", "+86 138 0013 8000",
                     "tel:+4741234567", "+47 412 34 567 ext. 9", "+999999999999999999",
                     "+", "00", "１２３４５６７８", "+٤٧٤١٢٣٤٥٦٧", "+47\u202e41234567"]),
    st.text(max_size=30))


@st.composite
def contact_files(draw: st.DrawFn) -> bytes:
    phones = draw(st.lists(PHONE, max_size=6))
    names = draw(st.lists(TEXT, min_size=1, max_size=3))
    if draw(st.booleans()):
        lines = []
        for i, phone in enumerate(phones):
            lines += ["BEGIN:VCARD", draw(st.sampled_from(["VERSION:3.0", "VERSION:2.1",
                                                           "VERSION:4.0", ""])),
                      f"FN:{names[i % len(names)]}",
                      f"TEL;{draw(st.sampled_from(['TYPE=CELL', 'CELL', 'VALUE=uri', '']))}:"
                      f"{phone}", draw(st.sampled_from(["END:VCARD", "", " folded"]))]
        text = "\r\n".join(lines)
    else:
        header = draw(st.sampled_from([
            "Name,Given Name,Phone 1 - Type,Phone 1 - Value,E-mail 1 - Value",
            "First Name,Last Name,Mobile Phone,Business Phone,E-mail Address",
            "name,phone,email", "name;phone", "\ufeffName,Phone"]))
        out = io.StringIO()
        writer = csv.writer(out)
        for i, phone in enumerate(phones):
            writer.writerow([names[i % len(names)], phone, phone, f"{phone}@example.org"])
        text = header + "\n" + out.getvalue()
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "gbk", "cp1252"])),
                       errors="replace")


def _read_contacts(data: bytes, region: str | None) -> None:
    try:
        contacts, report = read_all(data, region=region, max_contacts=1000)
    except ImportFailed as e:
        assert e.message
        return
    for contact in contacts:
        for phone in contact.phones:
            assert E164.match(phone), (phone, data)
        for email in contact.emails:
            assert "@" in email
    assert report.contacts >= len(contacts)


@FUZZ
@given(data=st.binary(max_size=4096), region=st.sampled_from([None, "NO", "US", "CN", "DE"]))
def test_the_contacts_importers_take_any_bytes(data: bytes, region: str | None) -> None:
    _read_contacts(data, region)


@FUZZ
@given(data=contact_files(), region=st.sampled_from([None, "NO", "US", "CN", "DE"]))
def test_contacts_files_give_only_e164_numbers(data: bytes, region: str | None) -> None:
    _read_contacts(data, region)


# -- the text decoder (mercato/text_decoding.py) --------------------------------------------

DECODER_ENCODINGS = {"utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                     "gb18030", "cp950", "cp932", "cp1252"}
TEXTS_IN_ENCODINGS = st.tuples(TEXT, st.sampled_from(
    ["utf-8", "utf-8-sig", "utf-16", "utf-32", "gb18030", "big5", "shift_jis", "cp1252"])).map(
    lambda pair: pair[0].encode(pair[1], errors="replace"))


@FUZZ
@given(data=st.one_of(st.binary(max_size=8192), TEXTS_IN_ENCODINGS),
       chunk=st.integers(1, 5000))
def test_the_text_decoder_takes_any_bytes_quickly(data: bytes, chunk: int) -> None:
    """Any bytes: an encoding it names, or NotText with a reason; lines stay bounded; and
    pushed in chunks or pulled as a stream, it never crashes and never hangs."""
    started = time.monotonic()
    try:
        encoding = sniff_encoding(data, whole_file=True)
    except NotText as e:
        assert e.reason
        encoding = ""
    assert not encoding or encoding in DECODER_ENCODINGS
    reader = LineReader(max_line_bytes=1024)
    lines: list[bytes] = []
    try:
        for start in range(0, len(data), chunk):
            lines += reader.feed(data[start:start + chunk])
        lines += reader.close()
    except NotText:
        assert not encoding
    decoder = reader.decoder()
    for line in lines:
        assert len(line) <= 1024
        decoder.decode(line)
    try:
        _, text = open_text(io.BytesIO(data))
        while text.read(4096):
            pass
    except NotText:
        pass
    assert time.monotonic() - started < 5


def test_the_text_decoder_does_not_take_european_text_for_chinese() -> None:
    for text in ["Informação, Educação, Conceição, São João", "AÇÃO RÁPIDA", "Müller Straße",
                 "Crème brûlée à la Café Noël", "Øresund Ærø Åland"]:
        assert sniff_encoding(text.encode("cp1252"), whole_file=True) == "cp1252", text
    for text in ["张伟,王芳,李娜", "西湖龙井茶", "联系人：王"]:
        assert sniff_encoding(text.encode("gbk"), whole_file=True) == "gb18030", text
