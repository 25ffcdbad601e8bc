"""Catalog import from CSV: encodings, the three formats, a corpus of hostile rows, both
database engines, 10,000 rows with progress, the API route, image fetching and the CLI."""

from __future__ import annotations

import asyncio
import io
import json
import ssl
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner
from PIL import Image

from appservices.commerce.api import api_errors
from appservices.commerce.catalog import import_routes as import_api
from appservices.commerce.catalog import storage as product_rows
from appservices.commerce.catalog.import_file import CatalogFile
from appservices.commerce.catalog.import_formats import html_to_text
from appservices.commerce.catalog.importing import ImageUnavailable, import_catalog
from appservices.commerce.catalog.products import Product
from appservices.commerce.cli import catalog as catalog_cli
from appservices.commerce.config import CommerceConfig
from appservices.commerce.db.upgrade import upgrade_table
from appservices.commerce.errors import Forbidden, InvalidInput
from appservices.commerce.http import CONTEXT, ApiContext
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal
from mercato.db import Database, open_database
from mercato.text_decoding import sniff_encoding
from mercato.types import MerchantSlug, UserID
from tests.integration.local_https import self_signed_certificate

CORPUS = Path(__file__).parent / "fixtures" / "catalog"
DEMO = MerchantSlug("demo")
OPERATOR = Principal(kind="operator")
SHOPIFY_IMG = "https://cdn.shopify.com/s/files/1/0001/products/"


def shop() -> store.Merchant:
    return store.Merchant(
        slug=DEMO, name="Demo Shop", description="Tees and mugs", website="https://shop.example",
        mxid=UserID("@shop_demo:localhost"), owner_mxid=UserID("@merchant:localhost"),
        status="approved", created_at=1_700_000_000_000)


async def open_shop_db(url: str) -> Database:
    database = open_database(url, upgrade_table, "commerce")
    await database.start()
    await store.insert_merchant(database, shop())
    # Verified, so its rows may link to its own site (the link rules of posts).
    await store.update_merchant(database, DEMO, verified_at=1_700_000_000_000,
                                verified_website="https://shop.example")
    return database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_shop_db(database_url)
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_shop_db(f"sqlite:{tmp_path / 'commerce.db'}")
    try:
        yield database
    finally:
        await database.stop()


def corpus(name: str) -> io.BufferedReader:
    return (CORPUS / name).open("rb")


async def run_import(db: Database, data: bytes | str, **kwargs: Any) -> dict[str, Any]:
    stream = io.BytesIO(data if isinstance(data, bytes) else (CORPUS / data).read_bytes())
    kwargs.setdefault("default_currency", "EUR")
    report = await import_catalog(db, OPERATOR, DEMO, stream, **kwargs)
    return report.to_json()


def outcome(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the parts every test states the same way."""
    return {k: report[k] for k in ("format", "encoding", "rows", "imported", "updated",
                                   "skipped", "refused", "warnings")}


def parsed(data: bytes, currency: str | None = "EUR") -> list[tuple[int, str, str]]:
    """Each row of a file as (row, sku, refusal or '')."""
    return [(r.row, r.sku, r.refused) for r in CatalogFile(io.BytesIO(data),
                                                           default_currency=currency)]


# -- pure: encodings, formats, hostile bytes ---------------------------------------------

@pytest.mark.parametrize(("data", "encoding"), [
    (b"sku,title\nA,plain ascii\n", "utf-8"),
    ("sku,title\nA,Crème brûlée\n".encode(), "utf-8"),
    (b"\xef\xbb\xbfsku,title\nA,x\n", "utf-8-sig"),
    ("sku,title\nA,茶\n".encode("utf-16"), "utf-16"),
    ("sku,title\nA,茶\n".encode("utf-16-le"), "utf-16-le"),
    ("sku,title\nA,茶\n".encode("utf-16-be"), "utf-16-be"),
    ("sku,title\nA,西湖龙井茶，罐装\n".encode("gbk"), "gb18030"),
    # Windows-1252 French also decodes as GBK byte pairs; it must not be read as Chinese.
    ("sku,title\nA,Crème brûlée à la Café Noël\n".encode("cp1252"), "cp1252"),
    # A UTF-8 file with one pasted Windows-1252 byte stays UTF-8 (that row is refused).
    ("sku,title\nA,日本語の説明 Crème\nB,Caf".encode() + b"\xe9\n", "utf-8"),
    ("sku,title\nA,茶\n".encode("utf-32"), "utf-32"),
    # Portuguese pairs accented letters ("ção"), which GBK would read as one character.
    ("sku,title\nA,Ação Educação Informação\nB,Coração São João\n".encode("cp1252"),
     "cp1252"),
    ("sku,title\nA,ÇÃO\n".encode("cp1252"), "cp1252"),
    ("sku,title\nA,緑茶のティーバッグ\n".encode("shift_jis"), "cp932"),
])
def test_encoding_is_decided_from_a_prefix(data: bytes, encoding: str) -> None:
    assert sniff_encoding(data, whole_file=True) == encoding


def test_html_descriptions_become_plain_text() -> None:
    assert html_to_text("<p>Soft <strong>organic</strong> cotton.</p>\n<ul><li>Wash &amp; "
                        "dry</li><li>Made in Portugal</li></ul><script>alert(1)</script>"
                        ) == "Soft organic cotton.\n• Wash & dry\n• Made in Portugal"
    assert html_to_text("<div>" * 100 + "Deep" + "</div>" * 100) == "Deep"
    assert html_to_text("a&nbsp;&nbsp;b<br>c<!-- <b>x</b> -->") == "a b\nc"


@pytest.mark.parametrize(("encoding", "name"), [
    ("utf-32", "UTF-32"), ("gb18030", "GBK/GB18030"), ("gbk", "GBK/GB18030"),
    ("shift_jis", "Shift_JIS")])
def test_wide_and_east_asian_encodings_are_read(encoding: str, name: str) -> None:
    text = "sku,title,price,currency\nTEA-1,西湖龙井茶 罐装,9.50,EUR\nTEA-2,緑茶,4.00,EUR\n"
    if encoding == "shift_jis":
        text = "sku,title,price,currency\nTEA-1,緑茶のティーバッグ,9.50,EUR\n"
    catalog = CatalogFile(io.BytesIO(text.encode(encoding)))
    rows = [(r.sku, r.fields and r.fields["title"]) for r in catalog]
    assert catalog.encoding_name == name
    assert rows == [tuple(line.split(",")[:2]) for line in text.splitlines()[1:]]


def test_a_binary_file_is_refused_as_no_text() -> None:
    with pytest.raises(InvalidInput, match="file: is not a text file .it holds binary data"):
        CatalogFile(io.BytesIO(b"PK\x03\x04\x14\x00\x06\x00" + bytes(4000)))


def test_a_file_that_is_no_catalog_is_refused_whole() -> None:
    with pytest.raises(InvalidInput, match="is not the header of a Shopify or WooCommerce"):
        CatalogFile(io.BytesIO(b"name,cost\nTee,1\n"))
    with pytest.raises(InvalidInput, match="file: is empty"):
        CatalogFile(io.BytesIO(b"\n\n"))
    with pytest.raises(InvalidInput, match="currency: this file has no currency column"):
        CatalogFile(corpus("shopify_products.csv"))
    with pytest.raises(InvalidInput, match="XYZ is not an ISO 4217"):
        CatalogFile(corpus("plain.csv"), default_currency="XYZ")


def test_plain_csv_without_a_default_currency_refuses_rows_without_one() -> None:
    rows = parsed((CORPUS / "plain.csv").read_bytes(), currency=None)
    assert rows[2] == (4, "HAT-1", "currency: is empty and the import has no default "
                                   "currency; fill it in or give the currency of the prices "
                                   "(such as EUR)")
    assert [r[2] for r in rows if r[0] != 4] == [""] * 4


def test_excel_semicolons_and_unused_columns() -> None:
    catalog = CatalogFile(io.BytesIO(b"sku;title;price;colour\nA-1;Tee;9,5;red\nA-2;Mug;4;\n"
                                     b"A-3;Lamp;1,250;\n"), default_currency="EUR")
    assert catalog.file_warnings == ["column 'colour' is not a Mercato column; it was ignored"]
    assert [(r.row, r.sku, r.refused, r.fields and r.fields["price"]) for r in catalog] == [
        (2, "A-1", "", "9.50"), (3, "A-2", "", "4.00"),
        (4, "A-3", "price: '1,250' has more than two decimals (or a thousands separator); "
                   "write it like 19.90, or 1000 for a thousand", None)]


def test_a_line_too_long_and_an_oversized_field_cost_one_row_each() -> None:
    data = (b"sku,title,price\n"
            + b"LONG," + b"x" * (5 * 2**20) + b",1.00\n"
            + b"BIG," + b"y" * (3 * 2**20) + b",1.00\n"
            + b"OK-1,Fine,1.00\n")
    assert parsed(data) == [
        (2, "", "is over 4 MiB on one line; it was skipped"),
        (3, "", "cannot be read as CSV (field larger than field limit (2097152)); a quote "
                "that is never closed often causes this"),
        (4, "OK-1", "")]


def test_a_quote_never_closed_is_one_refused_row() -> None:
    data = b'sku,title,price\nA,"Unclosed,1.00\nB,Fine,2.00\nC,Fine,3.00\n'
    assert parsed(data) == [(2, "A", "has 2 columns but the header has 3; put a field that "
                                     "contains a comma in double quotes, and close every "
                                     "quote")]


class GeneratedCatalog(io.RawIOBase):
    """A large plain CSV made on the fly, so the test itself holds no file in memory."""

    def __init__(self, rows: int, notes: bytes) -> None:
        self.rows, self.next, self.notes = rows, -1, notes
        self.pending, self.sent = bytearray(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self.pending) < len(buffer) and self.next < self.rows:
            self.pending += (b"sku,title,price,notes\n" if self.next < 0 else
                             b"SKU-%06d,Product %d,9.99,%s\n" % (self.next, self.next,
                                                                  self.notes))
            self.next += 1
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        del self.pending[:n]
        self.sent += n
        return n


def test_memory_does_not_grow_with_the_file() -> None:
    source = GeneratedCatalog(20_000, b"n" * 4000)
    tracemalloc.start()
    try:
        valid = sum(1 for row in CatalogFile(io.BufferedReader(source), default_currency="EUR")
                    if row.fields)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert valid == 20_000
    assert source.sent > 75 * 2**20
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {source.sent / 2**20} MiB file"


# -- the corpus, imported on both engines ------------------------------------------------

def refused(row: int, sku: str, reason: str) -> dict[str, Any]:
    return {"row": row, "sku": sku, "reason": reason}


def warned(row: int, sku: str, warning: str) -> dict[str, Any]:
    return {"row": row, "sku": sku, "warning": warning}


async def test_shopify_export(db: Database) -> None:
    report = await run_import(db, "shopify_products.csv")
    assert outcome(report) == {
        "format": "shopify", "encoding": "utf-8", "rows": 10, "imported": 6, "updated": 0,
        "skipped": 2,  # row 5 is one more image of the tee; row 8 a draft
        "refused": [
            refused(10, "", "Variant SKU is empty; give each variant its own SKU"),
            refused(11, "SCARF-RED", "Title is empty and no row with a Title has the Handle "
                                     "'scarf' just before it; keep each product's rows "
                                     "together, first row first")],
        "warnings": [
            warned(6, "BAG-1", "Variant Compare At Price 20.00 is lower than the price; it "
                               "was ignored"),
            warned(7, "gift-mug", "Variant SKU is empty; the Handle 'gift-mug' is the SKU"),
            warned(8, "CAP-OLD", "Status is draft; only active products are imported")]}
    tee_m = await product_rows.get_product(db, DEMO, "TEE-M")
    assert tee_m is not None
    assert (tee_m.title, tee_m.price, tee_m.original_price, tee_m.currency, tee_m.stock,
            tee_m.tags) == ("Classic Tee – M", "17.90", "19.90", "EUR", "in_stock",
                            ["basics", "cotton", "summer"])
    assert tee_m.description == "Soft organic cotton.\n• Machine wash & dry\n• Made in Portugal"
    stock = {sku: (await product_rows.get_product(db, DEMO, sku)).stock  # type: ignore[union-attr]
             for sku in ("TEE-L", "BAG-1", "gift-mug")}
    assert stock == {"TEE-L": "out_of_stock", "BAG-1": "preorder", "gift-mug": "in_stock"}
    hoodie = await product_rows.get_product(db, DEMO, "HOOD-GREY-M")
    assert hoodie is not None and hoodie.title == "Hoodie – Grey / M"
    assert await product_rows.get_product(db, DEMO, "CAP-OLD") is None
    assert await product_rows.count_products(db, DEMO) == 6


async def test_woocommerce_export(db: Database) -> None:
    report = await run_import(db, "woocommerce_products.csv", default_currency="GBP")
    assert outcome(report) == {
        "format": "woocommerce", "encoding": "utf-8-sig", "rows": 9, "imported": 4,
        "updated": 0, "skipped": 3,  # the variable and grouped parents, a draft
        # An external product sends buyers to another site: the link rules of posts refuse it.
        "refused": [refused(8, "BOOK-1", "The link https://books.example/cookbook points to "
                                         "books.example; posts may only link to shop.example."),
                    refused(10, "", "SKU is empty; give every product a SKU")],
        "warnings": [warned(7, "DRAFT-1", "the product is a draft (Published -1); only "
                                          "published products are imported")]}
    mug = await product_rows.get_product(db, DEMO, "MUG-BLUE")
    assert mug is not None
    assert (mug.price, mug.original_price, mug.currency, mug.stock, mug.tags) == (
        "8.00", "10.00", "GBP", "in_stock", ["gifts, small", "kitchen"])
    assert mug.description == "Blue Mug\nHolds 300 ml. Shop\nDishwasher safe."
    red = await product_rows.get_product(db, DEMO, "HOODIE-RED")
    assert red is not None
    # A variation takes what it lacks (description, tags) from its variable product.
    assert (red.title, red.price, red.original_price, red.stock, red.description,
            red.tags) == ("Hoodie - Red", "39.00", "45.00", "preorder", "Warm & soft.",
                          ["winter"])
    assert await product_rows.get_product(db, DEMO, "BOOK-1") is None
    red_mug = await product_rows.get_product(db, DEMO, "MUG-RED")
    assert red_mug is not None and red_mug.stock == "out_of_stock"


async def test_plain_csv_then_the_same_file_again_updates(db: Database) -> None:
    first = await run_import(db, "plain.csv")
    assert outcome(first) == {"format": "mercato", "encoding": "utf-8", "rows": 5,
                              "imported": 5, "updated": 0, "skipped": 0, "refused": [],
                              "warnings": []}
    socks = await product_rows.get_product(db, DEMO, "SOCK-2")
    assert socks is not None
    assert (socks.price, socks.original_price, socks.currency, socks.stock) == (
        "8.00", "10.00", "EUR", "out_of_stock")
    hats = {sku: await product_rows.get_product(db, DEMO, sku) for sku in ("HAT-1", "HAT-2")}
    assert (hats["HAT-1"].currency, hats["HAT-1"].stock) == ("EUR", "preorder")  # type: ignore[union-attr]
    assert (hats["HAT-2"].currency, hats["HAT-2"].stock) == ("USD", "out_of_stock")  # type: ignore[union-attr]
    again = await run_import(db, "plain.csv")
    assert (again["imported"], again["updated"], again["refused"]) == (0, 5, [])
    assert await product_rows.count_products(db, DEMO) == 5


@pytest.mark.parametrize(("name", "encoding"), [
    ("chinese_gbk.csv", "gb18030"), ("chinese_utf8_bom.csv", "utf-8-sig"),
    ("chinese_utf16.csv", "utf-16")])
async def test_chinese_titles_in_every_encoding(db: Database, name: str, encoding: str) -> None:
    report = await run_import(db, name, default_currency=None)
    assert outcome(report) == {"format": "mercato", "encoding": encoding, "rows": 3,
                               "imported": 3, "updated": 0, "skipped": 0, "refused": [],
                               "warnings": []}
    tea = await product_rows.get_product(db, DEMO, "TEA-1")
    assert tea is not None
    assert (tea.title, tea.description, tea.price, tea.currency, tea.tags) == (
        "西湖龙井茶", "明前特级，250克罐装。", "168.00", "CNY", ["绿茶", "茶叶"])
    cup = await product_rows.get_product(db, DEMO, "CUP-1")
    assert cup is not None and cup.title == "青花瓷茶杯"


async def test_a_big5_catalog_from_taiwan(db: Database) -> None:
    """Excel in Taiwan and Hong Kong saves CSV as Big5 (traditional characters)."""
    report = await run_import(db, "chinese_big5.csv", default_currency=None)
    assert outcome(report) == {"format": "mercato", "encoding": "cp950", "rows": 3,
                               "imported": 3, "updated": 0, "skipped": 0, "refused": [],
                               "warnings": []}
    tea = await product_rows.get_product(db, DEMO, "TEA-1")
    assert tea is not None
    assert (tea.title, tea.description, tea.price, tea.currency, tea.tags) == (
        "凍頂烏龍茶", "南投鹿谷，150克罐裝。", "680.00", "TWD", ["烏龍茶", "茶葉"])
    cup = await product_rows.get_product(db, DEMO, "CUP-1")
    assert cup is not None and cup.title == "青花瓷茶杯"


HOSTILE_REFUSED = [
    refused(6, "URL-1", "url: must be an absolute https:// address"),
    refused(7, "URL-2", "url: must be an absolute https:// address"),
    refused(8, "URL-3", "url: must be an absolute https:// address"),
    refused(9, "URL-4", "url: must be an absolute https:// address"),
    refused(13, "NEG-1", "price: '-5.00' is not a price: prices cannot be negative; write it "
                         "like 19.90"),
    refused(14, "NAN-1", "price: 'NaN' is not a price; write it like 19.90: the digits 0-9 and "
                         "at most one decimal point (no spaces, '_' or exponent)"),
    refused(15, "CUR-1", "currency: XYZ is not an ISO 4217 currency code"),
    refused(16, "CUR-2", "currency: must be an ISO 4217 code such as EUR or USD"),
    refused(17, "SALE-1", "original_price: is lower than the price; for a sale give the "
                          "price before the sale"),
    refused(18, "bad sku!", "sku: use 1-64 letters, digits, '.', '_' or '-', starting with a "
                            "letter or digit"),
    refused(19, "CTL-1", "title: contains invisible control characters (U+0007); remove them"),
    refused(20, "BIDI-1", "title: contains invisible control characters (U+202E); remove them"),
    refused(21, "TAGS-1", "tags: has 25 entries; the limit is 20"),
    refused(22, "STOCK-1", "stock: use one of: in_stock, out_of_stock, preorder"),
    refused(23, "OK-1", "duplicate SKU in this file (first seen at row 2)"),
    refused(24, "RAG-1", "has 3 columns but the header has 10; put a field that contains a "
                         "comma in double quotes, and close every quote"),
    refused(25, "RAG-2", "has 12 columns but the header has 10; put a field that contains a "
                         "comma in double quotes, and close every quote"),
    refused(28, "BYTE-1", "has bytes that are not valid UTF-8 (0xE9); save the file as UTF-8 "
                          "and import it again"),
    refused(30, "BIG-1", "description: is 1048576 characters long; the limit is 5000"),
]


async def test_hostile_rows_are_refused_or_made_safe(db: Database) -> None:
    data = (CORPUS / "hostile.csv").read_bytes() + b"BIG-1,Big," + b"A" * 2**20 + b",1,EUR,,,,,\n"
    report = await run_import(db, data)
    not_https = "image_url: must be an absolute https:// address; imported without an image"
    assert outcome(report) == {
        "format": "mercato", "encoding": "utf-8", "rows": 29, "imported": 9, "updated": 0,
        "skipped": 1,  # the blank line
        "refused": HOSTILE_REFUSED,
        "warnings": [warned(10, "IMG-1", not_https), warned(11, "IMG-2", not_https),
                     warned(12, "IMG-3", not_https)]}
    found = await product_rows.list_products(db, DEMO)
    assert sorted(p.sku for p in found) == ["IMG-1", "IMG-2", "IMG-3", "OK-1", "OK-2", "OK-3",
                                            "XSS-1", "XSS-2", "XSS-3"]
    # Angle brackets are text: kept as typed, escaped wherever a card or page shows them.
    texts = {p.sku: (p.title, p.description) for p in found if p.sku.startswith("XSS")}
    assert texts == {"XSS-1": ("<script>alert(1)</script>", ""),
                     "XSS-2": ("Nice", "<img src=x onerror=alert(1)>"),
                     "XSS-3": ("Click &lt;b&gt;here&lt;/b&gt; <b>now</b>", "")}
    first = await product_rows.get_product(db, DEMO, "OK-1")
    assert first is not None and first.title == "Crème brûlée set"  # the duplicate changed nothing
    assert all(p.image_mxc == "" for p in found)


async def test_html_in_a_shopify_export_is_made_safe(db: Database) -> None:
    report = await run_import(db, "hostile_shopify.csv")
    assert outcome(report) == {
        "format": "shopify", "encoding": "utf-8", "rows": 5, "imported": 5, "updated": 0,
        "skipped": 0, "refused": [],
        "warnings": [warned(2, "SH-1", "image_url (Image Src): must be an absolute https:// "
                                       "address; imported without an image")]}
    texts = {p.sku: (p.title, p.description)
             for p in await product_rows.list_products(db, DEMO)}
    # Markup is gone from descriptions; what the shop wrote as text (an escaped tag, a
    # title with brackets) stays text, escaped wherever it is shown.
    assert texts == {"SH-1": ("Safe title", "Hi\nthere"), "SH-2": ("Deep", "Deep text"),
                     "SH-3": ("Escaped", "<script>alert(1)</script>"),
                     "SH-4": ("<b>Bold</b> title", ""), "SH-5": ("Comment", "Visible & fine")}


# -- images, permissions, audit, failures ------------------------------------------------

class FakeImages:
    def __init__(self) -> None:
        self.fetched: list[str] = []

    async def __call__(self, url: str) -> tuple[str, dict[str, Any]] | None:
        self.fetched.append(url)
        name = url.rsplit("/", 1)[-1].split(".")[0]
        if name == "tee-m":
            raise ImageUnavailable("the server answered HTTP 404")
        if name == "bag":
            return None
        if name == "hoodie":
            raise RuntimeError("connection reset")
        return f"mxc://localhost/{name}", {"mimetype": "image/jpeg", "size": 100, "w": 8,
                                           "h": 8}


async def test_images_are_fetched_once_and_failures_are_warnings(db: Database) -> None:
    images = FakeImages()
    report = await run_import(db, "shopify_products.csv", fetch_image=images)
    assert sorted(images.fetched) == [SHOPIFY_IMG + f for f in (
        "bag.png", "hoodie.webp", "tee-m.jpg", "tee.jpg")]  # TEE-S and TEE-L share tee.jpg
    assert report["imported"] == 6
    image_warnings = [w for w in report["warnings"] if w["warning"].startswith("image")]
    assert image_warnings == [
        warned(3, "TEE-M", f"image not fetched from {SHOPIFY_IMG}tee-m.jpg: the server "
                           "answered HTTP 404; imported without an image"),
        warned(6, "BAG-1", f"image not fetched from {SHOPIFY_IMG}bag.png: the address gave "
                           "no image; imported without an image"),
        warned(9, "HOOD-GREY-M", f"image not fetched from {SHOPIFY_IMG}hoodie.webp: fetching "
                                 "it failed (RuntimeError); imported without an image")]
    tee = await product_rows.get_product(db, DEMO, "TEE-S")
    assert tee is not None and tee.image_mxc == "mxc://localhost/tee"
    assert tee.image_info == {"mimetype": "image/jpeg", "size": 100, "w": 8, "h": 8,
                              "source_url": SHOPIFY_IMG + "tee.jpg"}

    # Again: an image already uploaded from the same address is not fetched again.
    images.fetched.clear()
    again = await run_import(db, "shopify_products.csv", fetch_image=images)
    assert again["updated"] == 6
    assert SHOPIFY_IMG + "tee.jpg" not in images.fetched

    # A file without images keeps the images products have.
    plain = b"sku,title,price\nTEE-S,Classic Tee - S,21.00\n"
    assert (await run_import(db, plain, fetch_image=images))["updated"] == 1
    tee = await product_rows.get_product(db, DEMO, "TEE-S")
    assert tee is not None and (tee.price, tee.image_mxc) == ("21.00", "mxc://localhost/tee")


async def test_changed_products_are_told_after_they_are_saved(db: Database) -> None:
    await run_import(db, "plain.csv")
    told: list[tuple[str, str, str, str, str]] = []

    async def on_change(before: Product, after: Product) -> None:
        told.append((after.sku, before.price, after.price, before.stock, after.stock))
        if after.sku == "HAT-2":
            raise RuntimeError("homeserver down")

    changed = (b"sku,title,price,currency,stock\n"
               b"SOCK-1,Wool Socks,9.00,EUR,in_stock\n"  # cheaper
               b"HAT-2,Rain Hat,22.00,USD,in_stock\n"  # back in stock
               b"HAT-3,Wool Hat,18.00,GBP,in_stock\n"  # the same
               b"NEW-1,New,1.00,EUR,\n")
    report = await run_import(db, changed, on_change=on_change)
    assert told == [("SOCK-1", "12.50", "9.00", "in_stock", "in_stock"),
                    ("HAT-2", "22.00", "22.00", "out_of_stock", "in_stock")]
    assert (report["imported"], report["updated"], report["warnings"]) == (1, 3, [
        warned(3, "HAT-2", "saved, but its posted cards or price alerts were not updated "
                           "(RuntimeError)")])
    hat = await product_rows.get_product(db, DEMO, "HAT-2")
    assert hat is not None and hat.stock == "in_stock"


async def test_only_catalog_editors_may_import(db: Database) -> None:
    analyst = Principal(kind="api_key", key_slug=DEMO, key_role="analyst", key_id="k1")
    other = Principal(kind="api_key", key_slug="other", key_role="owner", key_id="k2")
    for principal, message in ((analyst, "Your role in 'demo' is analyst, which may not edit "
                                         "catalog."),
                               (other, "You are not staff of the shop 'demo'.")):
        with pytest.raises(Forbidden) as refusal:
            await import_catalog(db, principal, DEMO, corpus("plain.csv"),
                                 default_currency="EUR")
        assert refusal.value.message == message
    editor = Principal(kind="api_key", key_slug=DEMO, key_role="editor", key_id="k3")
    report = await import_catalog(db, editor, DEMO, corpus("plain.csv"), default_currency="EUR")
    assert report.imported == 5
    assert await product_rows.count_products(db, DEMO) == 5


async def test_one_audit_entry_with_the_counts(db: Database) -> None:
    await run_import(db, "woocommerce_products.csv")
    entries = await store.audit_log(db, DEMO)
    assert [(e.actor, e.action, e.detail) for e in entries] == [
        ("operator", "catalog_imported", {
            "format": "woocommerce", "encoding": "utf-8-sig", "rows": 9, "imported": 4,
            "updated": 0, "refused": 2, "skipped": 3, "warnings": 1})]


async def test_a_row_the_database_refuses_costs_that_row_only(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    real_upsert = product_rows.upsert_product

    async def upsert(conn: Any, slug: str, fields: dict[str, Any]) -> bool:
        if fields["sku"] == "SOCK-2":
            raise RuntimeError("disk full")
        return await real_upsert(conn, slug, fields)

    monkeypatch.setattr(product_rows, "upsert_product", upsert)
    report = await run_import(db, "plain.csv")
    assert (report["imported"], report["refused"]) == (4, [refused(
        3, "SOCK-2", "could not be saved (RuntimeError); import it again")])
    assert sorted(p.sku for p in await product_rows.list_products(db, DEMO)) == [
        "HAT-1", "HAT-2", "HAT-3", "SOCK-1"]


async def test_ten_thousand_rows_with_progress(sqlite_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("sku,title,description,price,stock,tags\n")
        for i in range(10_000):
            f.write(f"SKU-{i:05d},Product {i},Generated product number {i}.,{i % 1000}.99,"
                    f"{'in_stock' if i % 7 else 'out_of_stock'},generated\n")
    seen: list[int] = []
    with path.open("rb") as stream:
        report = await import_catalog(sqlite_db, OPERATOR, DEMO, stream,
                                      default_currency="EUR", progress=seen.append)
    assert (report.rows, report.imported, report.refused_count) == (10_000, 10_000, 0)
    assert seen == list(range(500, 10_001, 500))
    assert await product_rows.count_products(sqlite_db, DEMO) == 10_000
    last = await product_rows.get_product(sqlite_db, DEMO, "SKU-09999")
    assert last is not None and (last.price, last.tags) == ("999.99", ["generated"])


# -- the API route -----------------------------------------------------------------------

class FakeMatrix:
    """The commerce appservice as the import route and the catalog see it."""

    public_url = "http://localhost:8090"
    mercato_hosts = ("localhost",)

    def __init__(self) -> None:
        self.uploads: list[tuple[str, bytes, str, str]] = []
        self.edits: list[tuple[str, str, str]] = []  # room, card, txnId (queued)
        self.direct: list[tuple[str, str]] = []

    async def upload_image(self, merchant: store.Merchant, data: bytes, mimetype: str,
                           filename: str) -> str:
        self.uploads.append((merchant.slug, data, mimetype, filename))
        return f"mxc://localhost/upload{len(self.uploads)}"

    async def queue_card_edit(self, merchant: store.Merchant, room_id: str,
                              card_event_id: str, txn_id: str, conn: Any) -> None:
        self.edits.append((room_id, card_event_id, txn_id))

    def wake_messages(self) -> None:
        pass

    async def send_direct(self, merchant: store.Merchant, user_id: str, text: str,
                          txn_id: str, *, kind: str = "direct") -> tuple[str, str]:
        self.direct.append((user_id, text))
        return "!dm:localhost", f"$dm{len(self.direct)}"


@pytest.fixture
def matrix() -> FakeMatrix:
    return FakeMatrix()


@pytest.fixture
async def api(sqlite_db: Database, matrix: FakeMatrix
              ) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    config = CommerceConfig()
    app = web.Application(middlewares=[api_errors])
    app[CONTEXT] = ApiContext(db=sqlite_db, config=config, matrix=matrix)  # type: ignore[arg-type]
    app.router.add_post("/api/v1/shops/{slug}/products/import", import_api.import_products)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
    headers = {"Authorization": f"Bearer {config.operator_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session, base
    await runner.cleanup()


async def test_api_imports_a_csv_body(api: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = api
    url = f"{base}/shops/demo/products/import?currency=EUR&images=skip"
    async with session.post(url, data=(CORPUS / "plain.csv").read_bytes(),
                            headers={"Content-Type": "text/csv"}) as resp:
        assert resp.status == 200
        report = await resp.json()
    assert report == {"format": "mercato", "encoding": "utf-8", "rows": 5, "imported": 5,
                      "updated": 0, "skipped": 0, "refused_count": 0, "warning_count": 0,
                      "refused": [], "warnings": [], "listed_all": True}


async def test_api_import_edits_posted_cards_and_tells_alert_subscribers(
        api: tuple[aiohttp.ClientSession, str], sqlite_db: Database, matrix: FakeMatrix) -> None:
    session, base = api
    url = f"{base}/shops/demo/products/import?currency=EUR&images=skip"
    async with session.post(url, data=(CORPUS / "plain.csv").read_bytes()) as resp:
        assert resp.status == 200
    socks = await product_rows.get_product(sqlite_db, DEMO, "SOCK-1")
    assert socks is not None
    await product_rows.record_card(sqlite_db, "$card", "!channel:localhost", socks)
    await product_rows.add_alert(sqlite_db, DEMO, "SOCK-1", "@buyer:localhost", socks.price)
    cheaper = b"sku,title,price\nSOCK-1,Wool Socks,9.90\n"
    async with session.post(url, data=cheaper) as resp:
        assert (resp.status, (await resp.json())["updated"]) == (200, 1)
    assert [(room, event) for room, event, _ in matrix.edits] == [("!channel:localhost",
                                                                   "$card")]
    # The outbox renders the card from the product when it sends the edit.
    assert matrix.edits[0][2].startswith("mercato.cardedit.")
    repriced = await product_rows.get_product(sqlite_db, DEMO, "SOCK-1")
    assert repriced is not None and repriced.price == "9.90"
    assert [user for user, _ in matrix.direct] == ["@buyer:localhost"]


async def test_api_refuses_what_is_no_csv_upload(api: tuple[aiohttp.ClientSession, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    session, base = api
    shopify = (CORPUS / "shopify_products.csv").read_bytes()

    async def post(path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        async with session.post(base + path, **kwargs) as resp:
            return resp.status, await resp.json()

    form = aiohttp.FormData()
    form.add_field("file", shopify, filename="products.csv", content_type="text/csv")
    status, error = await post("/shops/demo/products/import?currency=EUR", data=form)
    assert (status, error["error"]) == (400, "Content-Type: send the CSV file itself as the "
                                             "body, as text/csv (curl --data-binary "
                                             "@products.csv), not a form or JSON")
    status, error = await post("/shops/demo/products/import", data=shopify)
    assert (status, error["error"]) == (400, "currency: this file has no currency column; give "
                                             "the currency of its prices (such as EUR)")
    status, error = await post("/shops/demo/products/import?currency=EURO", data=shopify)
    assert (status, error["error"]) == (400, "currency: must be an ISO 4217 code such as EUR "
                                             "or USD")
    status, error = await post("/shops/nope/products/import?currency=EUR", data=shopify)
    assert (status, error["errcode"]) == (404, "M_NOT_FOUND")
    status, error = await post("/shops/demo/products/import?currency=EUR", data=b"")
    assert (status, error["errcode"]) == (400, "M_MISSING_PARAM")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the route counts
        for _ in range(4):
            yield shopify

    monkeypatch.setattr(import_api, "MAX_IMPORT_BYTES", 3 * len(shopify))
    status, error = await post("/shops/demo/products/import?currency=EUR", data=chunked())
    assert (status, error["errcode"]) == (413, "M_TOO_LARGE")
    async with aiohttp.ClientSession() as anonymous, anonymous.post(
            base + "/shops/demo/products/import?currency=EUR", data=shopify) as resp:
        assert resp.status == 401


# -- fetching images over HTTPS ----------------------------------------------------------

def png(width: int = 3, height: int = 2) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def image_host(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; (base URL, CA file)."""
    certificate = self_signed_certificate(tmp_path, "images")
    app = web.Application()

    async def image(_: web.Request) -> web.Response:
        return web.Response(body=png(), content_type="image/png")

    async def big(_: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\0" * (10 * 2**20 + 1), content_type="image/png")

    app.router.add_get("/img/tee.png", image)
    app.router.add_get("/img/big.png", big)
    app.router.add_get("/img/page.html", lambda _: _html())
    app.router.add_get("/img/moved.png", lambda _: _redirect("/img/tee.png"))
    app.router.add_get("/img/to-http.png", lambda _: _redirect("http://127.0.0.1:1/x.png"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate.cert, certificate.key)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}", str(certificate.cert)
    finally:
        await runner.cleanup()


async def _html() -> web.Response:
    return web.Response(text="<html>not an image</html>", content_type="text/html")


async def _redirect(location: str) -> web.Response:
    raise web.HTTPFound(location)


async def test_images_are_fetched_checked_and_uploaded(image_host: tuple[str, str]) -> None:
    base, ca_file = image_host
    matrix = FakeMatrix()
    async with import_api.image_session(public_only=False, ca_file=ca_file) as session:
        fetch = import_api.image_fetcher(session, matrix, shop(), public_only=False)
        assert await fetch(f"{base}/img/moved.png") == ("mxc://localhost/upload1", {
            "mimetype": "image/png", "size": len(png()), "w": 3, "h": 2,
            "filename": "moved.png"})
        assert matrix.uploads == [("demo", png(), "image/png", "moved.png")]
        for path, why in (("/img/page.html", "it is not a PNG, JPEG, WebP or GIF image"),
                          ("/img/big.png", "the image is over 10 MiB"),
                          ("/img/none.png", "the server answered HTTP 404"),
                          ("/img/to-http.png", "only https:// images are fetched")):
            with pytest.raises(ImageUnavailable) as failure:
                await fetch(base + path)
            assert str(failure.value) == why
    assert len(matrix.uploads) == 1


async def test_image_addresses_inside_our_network_are_never_fetched(
        image_host: tuple[str, str]) -> None:
    base, ca_file = image_host
    port = base.rsplit(":", 1)[1]
    async with import_api.image_session(ca_file=ca_file) as session:
        for url, why in ((f"{base}/img/tee.png", "127.0.0.1 is not a public address"),
                         (f"https://localhost:{port}/img/tee.png",
                          "localhost is not a public address"),
                         ("https://10.1.2.3/x.png", "10.1.2.3 is not a public address"),
                         ("https://[::1]/x.png", "::1 is not a public address"),
                         ("http://example.com/x.png", "only https:// images are fetched"),
                         ("ftp://example.com/x.png", "only https:// images are fetched")):
            with pytest.raises(ImageUnavailable) as failure:
                await import_api.download_image(session, url)
            assert str(failure.value) == why


# -- the CLI -----------------------------------------------------------------------------

async def test_cli_sends_the_file_and_prints_the_refusals(
        api: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = api
    key = session.headers["Authorization"].removeprefix("Bearer ")
    runner = CliRunner()
    args = ["import", str(CORPUS / "hostile.csv"), "--shop", "demo", "--api-url", base,
            "--key", key, "--currency", "EUR"]
    result = await asyncio.to_thread(runner.invoke, catalog_cli, args, obj=None)
    assert result.exit_code == 1, result.output  # rows were refused
    assert ("Mercato CSV (utf-8): 28 rows — 9 imported, 0 updated, 18 refused, 1 skipped, "
            "3 warnings") in result.output
    assert "duplicate SKU in this file (first seen at row 2)" in result.output

    result = await asyncio.to_thread(runner.invoke, catalog_cli, [*args, "--json"], obj=None)
    # (The server runs in this process: its log lines share the captured output.)
    report = json.loads(result.output[result.output.index("\n{\n") + 1:])
    assert (report["updated"], report["refused_count"]) == (9, 18)

    missing = await asyncio.to_thread(runner.invoke, catalog_cli, [
        "import", str(CORPUS / "plain.csv"), "--shop", "nope", "--api-url", base, "--key", key],
        obj=None)
    assert missing.exit_code == 1
    assert "There is no shop 'nope'. (M_NOT_FOUND)" in missing.output
