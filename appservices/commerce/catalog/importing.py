"""Bulk import of a shop's catalog from CSV: Shopify's and WooCommerce's product exports,
and Mercato's own documented CSV (docs/catalog-csv.md).

The core is sans-I/O: `CatalogFile` turns a binary stream into checked rows, reading it in
chunks, so memory is bounded by the longest row, never by the file. `import_catalog` writes
the valid rows in batches: each batch is checked first and written in one transaction, so
a refused row writes nothing and no product is ever half-written.
"""

from __future__ import annotations

import asyncio
import csv
import html
import inspect
import io
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any

import nh3

from appservices.commerce.catalog import storage as rows
from appservices.commerce.catalog.products import (
    Product,
    link_texts,
    validate_currency,
    validate_product,
    validate_url,
)
from appservices.commerce.errors import InvalidInput
from appservices.commerce.links import LinkPolicy, LinkRefused, check_links, policy_for
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, require
from appservices.commerce.shops.roles import Action
from mercato.db import Database, transaction
from mercato.logging import get_logger
from mercato.text_decoding import (
    SURROGATE,
    EmptyText,
    NotText,
    encoding_name,
    open_text,
)
from mercato.values import InvalidValue, parse_money

log = get_logger(__name__)

SAMPLE_BYTES = 1024 * 1024  # the prefix the encoding is decided from
MAX_FIELD_CHARS = 2 * 1024 * 1024
MAX_LINE_CHARS = 4 * 1024 * 1024
BATCH_ROWS = 250  # rows per transaction; divides PROGRESS_EVERY so progress is exact
PROGRESS_EVERY = 500
MAX_LISTED = 1000  # refusals and warnings listed in a report (all are counted)
IMAGE_FETCHES = 8  # at the same time

ImageFetcher = Callable[[str], Awaitable[tuple[str, dict[str, Any]] | None]]
Progress = Callable[[int], Any]


class ImageUnavailable(Exception):
    """The image at a row's URL could not be fetched; the message says why."""


class _LineTooLong(Exception):
    pass


class _Lines:
    """Physical lines for the csv reader, none longer than MAX_LINE_CHARS (a file with no
    line breaks would otherwise be read whole); a longer one is skipped and raises once."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._text = text

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(MAX_LINE_CHARS)
        if not line:
            raise StopIteration
        if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while (more := self._text.readline(MAX_LINE_CHARS)) and not more.endswith(
                    ("\n", "\r")):
                pass
            raise _LineTooLong
        return line


# -- mapping rows of each format to product fields ---------------------------------------

BLOCK_TAGS = re.compile(r"<\s*(?:br|/?(?:p|div|ul|ol|h[1-6]|tr|table|blockquote|section)|/li)"
                        r"\b[^>]*>", re.IGNORECASE)
LIST_ITEM = re.compile(r"<\s*li\b[^>]*>", re.IGNORECASE)


def html_to_text(markup: str) -> str:
    """An HTML description as plain text: tags (and script/style content) gone, entities
    decoded, whitespace collapsed; paragraphs and list items each on a line."""
    text = LIST_ITEM.sub("\n• ", BLOCK_TAGS.sub("\n", markup))
    text = html.unescape(nh3.clean(text, tags=set()))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _lines(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _split_tags(value: str) -> list[str]:
    # WooCommerce writes a comma inside a tag as "\,".
    return [t.replace("\\,", ",").strip() for t in re.split(r"(?<!\\),", value) if t.strip()]


def _price(value: str) -> str:
    """A price as typed in a spreadsheet: a decimal comma ("9,50") is read as a point. What
    is no price stays as typed, for the product's validator to refuse with its column."""
    try:
        return parse_money("price", value, decimal_comma=True)
    except InvalidValue:
        return value.strip()


def _stock_from_quantity(quantity: str, default: str = "in_stock") -> str:
    try:
        return "in_stock" if Decimal(quantity.strip()) > 0 else "out_of_stock"
    except InvalidOperation:
        return default


@dataclass
class Mapped:
    """One CSV row as the product fields to check, or a row that carries no product."""

    product: dict[str, Any] | None  # None: nothing to import from this row
    sku: str = ""
    image_url: str = ""
    warnings: list[str] = field(default_factory=list)


class Refused(Exception):
    """The row cannot become a product; `reason` tells the shop what to change."""

    def __init__(self, sku: str, reason: str) -> None:
        super().__init__(reason)
        self.sku, self.reason = sku, reason


class MercatoCsv:
    """Mercato's documented CSV (docs/catalog-csv.md): one product per row."""

    name = "mercato"
    columns = ("sku", "title", "description", "price", "currency", "original_price", "url",
               "stock", "tags", "image_url")
    sources = {name: name for name in columns}

    def __init__(self, default_currency: str | None) -> None:
        self.default_currency = default_currency

    def map(self, r: dict[str, str]) -> Mapped:
        sku = r["sku"].strip()
        currency = r.get("currency", "").strip() or self.default_currency
        if not currency:
            raise Refused(sku, "currency: is empty and the import has no default currency; "
                               "fill it in or give the currency of the prices (such as EUR)")
        stock = r.get("stock", "").strip().lower().replace(" ", "_").replace("-", "_")
        if re.fullmatch(r"-?\d+", stock):
            stock = _stock_from_quantity(stock)
        return Mapped(product={
            "sku": sku, "title": _one_line(r["title"]),
            "description": _lines(r.get("description", "")), "price": _price(r["price"]),
            "currency": currency, "original_price": _price(r.get("original_price", "")) or None,
            "url": r.get("url", "").strip(), "stock": stock or "in_stock",
            "tags": _split_tags(r.get("tags", ""))},
            sku=sku, image_url=r.get("image_url", "").strip())


class ShopifyExport:
    """Shopify's product export: a product's first row has its Title; the rows under it with
    the same Handle are its other variants (each with its Variant SKU) or more images."""

    name = "shopify"
    sources = {"sku": "Variant SKU", "title": "Title", "description": "Body (HTML)",
               "price": "Variant Price", "original_price": "Variant Compare At Price",
               "tags": "Tags", "image_url": "Image Src", "currency": "the import's currency"}

    def __init__(self, default_currency: str | None) -> None:
        self.currency = default_currency
        self.parent: dict[str, str] | None = None

    def map(self, r: dict[str, str]) -> Mapped:
        handle = r["handle"].strip()
        if r["title"].strip():
            self.parent = base = r
        elif self.parent is not None and handle == self.parent["handle"].strip():
            base = self.parent
            if not any(r.get(c, "").strip() for c in ("variant sku", "variant price",
                                                      "option1 value")):
                return Mapped(product=None)  # one more image of the product above
        else:
            raise Refused(r.get("variant sku", "").strip(),
                          f"Title is empty and no row with a Title has the Handle '{handle}' "
                          "just before it; keep each product's rows together, first row "
                          "first")
        options = [r.get(f"option{i} value", "").strip() for i in (1, 2, 3)]
        options = [o for o in options if o and o != "Default Title"]
        sku, warnings = r.get("variant sku", "").strip(), []
        status = (base.get("status") or "active").strip().lower()
        if status != "active":  # said once, on the product's first row
            return Mapped(product=None, sku=sku or handle, warnings=[
                f"Status is {status}; only active products are imported"] if r is base else [])
        if not sku and options:
            raise Refused("", "Variant SKU is empty; give each variant its own SKU")
        if not sku:
            sku = handle
            warnings.append(f"Variant SKU is empty; the Handle '{handle}' is the SKU")
        title = _one_line(base["title"])
        if options:
            title = f"{title} – {' / '.join(options)}"
        price = r.get("variant price", "").strip()
        compare = r.get("variant compare at price", "").strip()
        original: str | None = compare or None
        try:
            if compare and Decimal(compare) <= Decimal(price):
                original = None  # Shopify shows no sale then, nor do we
                if Decimal(compare) < Decimal(price):
                    warnings.append(f"Variant Compare At Price {compare} is lower than the "
                                    "price; it was ignored")
        except InvalidOperation:
            pass  # the validator names the bad price
        stock = "in_stock"
        if r.get("variant inventory tracker", "shopify").strip():
            stock = _stock_from_quantity(r.get("variant inventory qty", ""))
            if stock == "out_of_stock" and r.get(
                    "variant inventory policy", "").strip().lower() == "continue":
                stock = "preorder"  # sold while out of stock
        return Mapped(product={
            "sku": sku, "title": title, "description": html_to_text(base.get("body (html)", "")),
            "price": price, "currency": self.currency, "original_price": original,
            "stock": stock, "tags": _split_tags(base.get("tags", ""))},
            sku=sku, warnings=warnings,
            image_url=(r.get("variant image", "") or base.get("image src", "")).strip())


class WooCommerceExport:
    """WooCommerce's product export: simple and external products, and the variations of a
    variable product (which follow it, naming it in Parent)."""

    name = "woocommerce"
    sources = {"sku": "SKU", "title": "Name", "description": "Description",
               "price": "Sale price or Regular price", "original_price": "Regular price",
               "stock": "In stock?",
               "tags": "Tags", "url": "External URL", "image_url": "Images",
               "currency": "the import's currency"}

    def __init__(self, default_currency: str | None) -> None:
        self.currency = default_currency
        self.parent: dict[str, str] | None = None

    def map(self, r: dict[str, str]) -> Mapped:
        kinds = {k.strip() for k in r["type"].lower().split(",")}
        sku = r["sku"].strip()
        if "variable" in kinds:
            self.parent = r
            return Mapped(product=None)  # its variations carry the prices
        if "grouped" in kinds:
            return Mapped(product=None)  # a list of other products, imported on their own
        published = r.get("published", "").strip()
        if published not in ("", "1"):
            state = {"0": "private", "-1": "a draft"}.get(published, published)
            return Mapped(product=None, sku=sku, warnings=[
                f"the product is {state} (Published {published}); only published products "
                "are imported"])
        if not sku:
            raise Refused("", "SKU is empty; give every product a SKU")
        parent: dict[str, str] = {}
        if "variation" in kinds and self.parent is not None and r.get("parent", "").strip() in (
                f"id:{self.parent.get('id', '').strip()}", self.parent["sku"].strip()):
            parent = self.parent
        description = (r.get("description") or r.get("short description")
                       or parent.get("description") or parent.get("short description") or "")
        sale, regular = r.get("sale price", "").strip(), r.get("regular price", "").strip()
        in_stock = r.get("in stock?", "").strip().lower()
        stock = {"1": "in_stock", "0": "out_of_stock", "backorder": "preorder",
                 "onbackorder": "preorder"}.get(in_stock) or _stock_from_quantity(
            r.get("stock", ""))
        images = r.get("images", "").strip() or parent.get("images", "")
        return Mapped(product={
            "sku": sku, "title": _one_line(r["name"] or parent.get("name", "")),
            "description": html_to_text(description.replace("\\n", "\n")),
            "price": sale or regular, "currency": self.currency,
            "original_price": regular if sale else None,
            "url": r.get("external url", "").strip(), "stock": stock,
            "tags": _split_tags(r.get("tags", "") or parent.get("tags", ""))},
            sku=sku, image_url=images.split(",")[0].strip())


Format = type[MercatoCsv] | type[ShopifyExport] | type[WooCommerceExport]


def detect_format(header: list[str]) -> Format | None:
    names = {h.strip().lower() for h in header}
    if {"handle", "title", "variant price"} <= names:
        return ShopifyExport
    if {"type", "sku", "name", "regular price"} <= names:
        return WooCommerceExport
    if {"sku", "title", "price"} <= names:
        return MercatoCsv
    return None


# -- reading a file ----------------------------------------------------------------------

@dataclass
class CatalogRow:
    """One row of the file, checked: `fields` to write, or why it was refused or skipped."""

    row: int  # 1-based; the header is row 1
    sku: str
    fields: dict[str, Any] | None = None
    image_url: str = ""
    refused: str = ""
    warnings: list[str] = field(default_factory=list)


def _shown(text: str, limit: int = 64) -> str:
    """Text from the file as a report may show it (no lone surrogates, not too long)."""
    text = SURROGATE.sub("\ufffd", text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class CatalogFile:
    """A catalog CSV read from a binary stream: its encoding, format, and checked rows."""

    def __init__(self, stream: IO[bytes], *, default_currency: str | None = None,
                 link_policy: LinkPolicy | None = None) -> None:
        """`link_policy`: where the shop's rows may link (None only reads and checks the
        file; an import always passes the shop's)."""
        self.link_policy = link_policy
        csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
        try:
            self.encoding, self._text = open_text(stream, sample_bytes=SAMPLE_BYTES)
        except EmptyText:
            raise InvalidInput("file", "is empty; export your catalog as CSV and send "
                                       "that") from None
        except NotText as e:
            raise InvalidInput("file", f"is not a text file ({e.reason}); export your "
                                       "catalog as CSV and send that") from None
        first = self._text.readline(MAX_LINE_CHARS)
        for delimiter in (",", ";", "\t"):  # Excel writes ';' or tabs in some locales
            self.header = next(csv.reader([first], delimiter=delimiter), [])
            kind = detect_format(self.header)
            if kind:
                break
        else:
            raise InvalidInput("file", "the first row is not the header of a Shopify or "
                                       "WooCommerce product export, nor Mercato's CSV (sku,"
                                       "title,price,…); see docs/catalog-csv.md")
        self.format = kind.name
        if default_currency:
            default_currency = validate_currency(default_currency)
        elif kind is not MercatoCsv or "currency" not in {h.strip().lower() for h in self.header}:
            raise InvalidInput("currency", "this file has no currency column; give the "
                                           "currency of its prices (such as EUR)")
        self.mapper = kind(default_currency)
        self.columns = [h.strip().lower() for h in self.header]
        self.file_warnings: list[str] = []
        if kind is MercatoCsv:
            self.file_warnings = [f"column '{_shown(h)}' is not a Mercato column; it was ignored"
                                  for h in self.header if h.strip().lower() not in kind.columns]
        self.delimiter = delimiter

    @property
    def encoding_name(self) -> str:
        return encoding_name(self.encoding)

    def __iter__(self) -> Iterator[CatalogRow]:
        reader = csv.reader(_Lines(self._text), delimiter=self.delimiter)
        seen: dict[str, int] = {}
        sku_at = self.columns.index("sku") if "sku" in self.columns else self.columns.index(
            "variant sku") if "variant sku" in self.columns else None
        row = 1
        while True:
            row += 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except _LineTooLong:
                yield CatalogRow(row, "", refused=f"is over {MAX_LINE_CHARS // 2**20} MiB on "
                                                  "one line; it was skipped")
                continue
            except csv.Error as e:
                yield CatalogRow(row, "", refused=f"cannot be read as CSV ({e}); a quote that "
                                                  "is never closed often causes this")
                continue
            if not any(c.strip() for c in cells):
                yield CatalogRow(row, "")  # a blank line
                continue
            guess = _shown(cells[sku_at].strip()) if sku_at is not None and sku_at < len(
                cells) else ""
            bad = next((m for c in cells if (m := SURROGATE.search(c))), None)
            if bad:
                byte = ord(bad.group()) - 0xDC00
                yield CatalogRow(row, guess, refused=(
                    f"has bytes that are not valid {self.encoding_name} (0x{byte:02X}); save "
                    "the file as UTF-8 and import it again"))
                continue
            if len(cells) != len(self.columns):
                yield CatalogRow(row, guess, refused=(
                    f"has {len(cells)} columns but the header has {len(self.columns)}; put "
                    "a field that contains a comma in double quotes, and close every quote"))
                continue
            yield self._checked(row, dict(zip(self.columns, cells, strict=True)), seen)

    def _checked(self, row: int, record: dict[str, str], seen: dict[str, int]) -> CatalogRow:
        try:
            mapped = self.mapper.map(record)
        except Refused as e:
            return CatalogRow(row, _shown(e.sku), refused=e.reason)
        if mapped.product is None:
            return CatalogRow(row, _shown(mapped.sku), warnings=mapped.warnings)
        sku = mapped.sku
        if sku in seen:
            return CatalogRow(row, _shown(sku), refused=f"duplicate SKU in this file (first "
                                                         f"seen at row {seen[sku]})")
        seen[sku] = row
        try:
            fields = validate_product(mapped.product)
        except InvalidValue as e:
            return CatalogRow(row, _shown(sku), refused=self._reason(e))
        if self.link_policy is not None:
            try:
                check_links(link_texts(fields), self.link_policy)
            except LinkRefused as e:  # the same sentence a post gets
                return CatalogRow(row, _shown(sku), refused=e.message)
        image_url = mapped.image_url
        if image_url:
            try:
                image_url = validate_url("image_url", image_url)
            except InvalidValue as e:
                image_url = ""
                mapped.warnings.append(f"{self._reason(e)}; imported without an image")
        return CatalogRow(row, fields["sku"], fields=fields, image_url=image_url,
                          warnings=mapped.warnings)

    def _reason(self, error: InvalidValue) -> str:
        column = self.mapper.sources.get(error.field, error.field)
        message = error.message.removeprefix(f"{error.field}: ")
        return f"{error.field} ({column}): {message}" if column != error.field else (
            error.message)


# -- the import --------------------------------------------------------------------------

@dataclass
class ImportReport:
    format: str
    encoding: str
    rows: int = 0  # data rows read (the header is not counted)
    imported: int = 0
    updated: int = 0
    skipped: int = 0  # rows with no product of their own: image rows, drafts, blank lines
    refused: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    refused_count: int = 0
    warning_count: int = 0

    def refuse(self, row: int, sku: str, reason: str) -> None:
        self.refused_count += 1
        if len(self.refused) < MAX_LISTED:
            self.refused.append({"row": row, "sku": sku, "reason": reason})

    def warn(self, row: int, sku: str, warning: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_LISTED:
            self.warnings.append({"row": row, "sku": sku, "warning": warning})

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "encoding": self.encoding, "rows": self.rows,
                "imported": self.imported, "updated": self.updated, "skipped": self.skipped,
                "refused_count": self.refused_count, "warning_count": self.warning_count,
                "refused": self.refused, "warnings": self.warnings,
                "listed_all": (len(self.refused) == self.refused_count
                               and len(self.warnings) == self.warning_count)}


class _Images:
    """Fetches each image URL once per import, a few at a time."""

    def __init__(self, fetch: ImageFetcher | None) -> None:
        self.fetch = fetch
        self.done: dict[str, tuple[str, dict[str, Any]] | str] = {}
        self.limit = asyncio.Semaphore(IMAGE_FETCHES)

    async def get(self, url: str) -> tuple[str, dict[str, Any]] | str:
        """(mxc, info), or why there is no image."""
        if url not in self.done and self.fetch is not None:
            async with self.limit:
                try:
                    found = await self.fetch(url)
                    result: tuple[str, dict[str, Any]] | str = (
                        "the address gave no image" if found is None else
                        (found[0], {**found[1], "source_url": url}))
                except ImageUnavailable as e:
                    result = str(e)
                except Exception as e:  # a broken server must not stop the import
                    log.warning("catalog_import.image_failed", url=url, error=repr(e))
                    result = f"fetching it failed ({type(e).__name__})"
            if len(self.done) >= 10_000:
                self.done.clear()
            self.done[url] = result
        return self.done.get(url, "images are not fetched here")


# What a card or a price-drop alert must hear of: the product before and after the import.
CARD_FIELDS = ("title", "price", "currency", "original_price", "stock", "image_mxc")
ProductChanged = Callable[[Product, Product], Awaitable[None]]


class _Import:
    """The writing side of one import: images, transactions, the report."""

    def __init__(self, db: Database, slug: str, report: ImportReport,
                 fetch_image: ImageFetcher | None, on_change: ProductChanged | None) -> None:
        self.db, self.slug, self.report = db, slug, report
        self.images, self.on_change = _Images(fetch_image), on_change

    async def batch(self, batch: list[CatalogRow]) -> None:
        """Check first, then write the valid rows of the batch in one transaction."""
        valid = [item for item in batch if item.fields is not None]
        before = await asyncio.gather(*(self._add_image(item) for item in valid))
        outcomes = await self._write(valid) if valid else []
        results = {id(item): outcome for item, outcome in zip(valid, outcomes, strict=True)}
        for item, old in zip(valid, before, strict=True):
            if results[id(item)] is False and old is not None and self.on_change:
                await self._tell_change(item, old)
        for item in batch:
            outcome = results.get(id(item))
            if item.refused or isinstance(outcome, str):
                self.report.refuse(item.row, item.sku, item.refused or str(outcome))
            elif outcome is True:
                self.report.imported += 1
            elif outcome is False:
                self.report.updated += 1
            else:
                self.report.skipped += 1
            for warning in item.warnings:
                self.report.warn(item.row, item.sku, warning)
        self.report.rows += len(batch)

    async def _add_image(self, item: CatalogRow) -> Product | None:
        """Give the row its image: fetched, or the one the product has (when the row has
        none, or the same source). Returns the product as it was, if it existed."""
        fields = item.fields
        if fields is None:
            return None
        existing = await rows.get_product(self.db, self.slug, fields["sku"])
        current: dict[str, Any] = {"image_mxc": existing.image_mxc,
                                   "image_info": existing.image_info} if (
            existing and existing.image_mxc) else {}
        if not item.image_url or self.images.fetch is None or current.get(
                "image_info", {}).get("source_url") == item.image_url:
            fields.update(current)
            return existing
        result = await self.images.get(item.image_url)
        if isinstance(result, tuple):
            try:
                fields.update(validate_product({"image_mxc": result[0],
                                                "image_info": result[1]}, partial=True))
                return existing
            except InvalidValue as e:
                result = e.message
        fields.update(current)
        kept = "it keeps its current image" if current else "imported without an image"
        item.warnings.append(f"image not fetched from {_shown(item.image_url, 120)}: "
                             f"{result}; {kept}")
        return existing

    async def _write(self, valid: list[CatalogRow]) -> list[bool | str]:
        """Each row written (True if new, False if updated), or why it could not be."""
        products = [item.fields for item in valid if item.fields is not None]  # all of them
        try:
            async with transaction(self.db) as conn:
                return [await rows.upsert_product(conn, self.slug, fields)
                        for fields in products]
        except Exception:
            log.exception("catalog_import.batch_failed", shop=self.slug, rows=len(valid))
        outcomes: list[bool | str] = []  # one by one, so one bad write costs one row
        for fields in products:
            try:
                async with transaction(self.db) as conn:
                    outcomes.append(await rows.upsert_product(conn, self.slug, fields))
            except Exception as e:
                outcomes.append(f"could not be saved ({type(e).__name__}); import it again")
        return outcomes

    async def _tell_change(self, item: CatalogRow, old: Product) -> None:
        fields = item.fields or {}
        if all(getattr(old, name) == fields.get(name, getattr(old, name))
               for name in CARD_FIELDS):
            return
        new = await rows.get_product(self.db, self.slug, old.sku)
        if new is None or self.on_change is None:
            return
        try:
            await self.on_change(old, new)
        except Exception as e:  # saved it is; the cards catch up on the next change
            log.exception("catalog_import.change_failed", shop=self.slug, sku=old.sku)
            item.warnings.append(f"saved, but its posted cards or price alerts were not "
                                 f"updated ({type(e).__name__})")


def _next_batch(items: Iterator[CatalogRow]) -> list[CatalogRow]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH_ROWS:
            break
    return batch


async def import_catalog(db: Database, principal: Principal, slug: str, stream: IO[bytes], *,
                         default_currency: str | None, fetch_image: ImageFetcher | None = None,
                         progress: Progress | None = None,
                         on_change: ProductChanged | None = None,
                         mercato_hosts: tuple[str, ...] = ()) -> ImportReport:
    """Import a catalog CSV into the shop: every row is imported, updated or refused with
    its reason; nothing is half-written. `progress(rows_done)` is called every 500 rows;
    `on_change(before, after)` for each existing product whose card would now look
    different (price, stock, title, image), after it was saved. Rows pass the link rules
    of posts: to Mercato's pages (`mercato_hosts`) and the shop's verified site only."""
    merchant = await require(db, principal, slug, Action.EDIT_CATALOG)
    # Reading and checking rows is CPU and file work: off the event loop, a batch at a time.
    catalog = await asyncio.to_thread(CatalogFile, stream, default_currency=default_currency,
                                      link_policy=policy_for(merchant, mercato_hosts))
    report = ImportReport(format=catalog.format, encoding=catalog.encoding)
    for warning in catalog.file_warnings:
        report.warn(1, "", warning)
    items, writer = iter(catalog), _Import(db, slug, report, fetch_image, on_change)

    async def tell(done: int) -> None:
        if progress is not None and inspect.isawaitable(result := progress(done)):
            await result

    try:
        while batch := await asyncio.to_thread(_next_batch, items):
            before = report.rows
            await writer.batch(batch)
            if report.rows // PROGRESS_EVERY > before // PROGRESS_EVERY:
                await tell(report.rows)
        if report.rows % PROGRESS_EVERY:
            await tell(report.rows)
    except BaseException:
        await _audit(db, principal, slug, report, "catalog_import_stopped")
        raise
    await _audit(db, principal, slug, report, "catalog_imported")
    log.info("catalog.imported", shop=slug, format=report.format, rows=report.rows,
             imported=report.imported, updated=report.updated, refused=report.refused_count)
    return report


async def _audit(db: Database, principal: Principal, slug: str, report: ImportReport,
                 action: str) -> None:
    """One entry with the counts; also when an import stopped half-way (whole rows only
    were written), so the shop can see what happened."""
    if action == "catalog_import_stopped" and not (report.imported or report.updated):
        return
    try:
        await store.audit(db, slug, principal.actor, action, format=report.format,
                           encoding=report.encoding, rows=report.rows, imported=report.imported,
                           updated=report.updated, refused=report.refused_count,
                           skipped=report.skipped, warnings=report.warning_count)
    except Exception:
        if action == "catalog_imported":
            raise
        log.exception("catalog_import.audit_failed", shop=slug)
