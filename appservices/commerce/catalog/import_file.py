"""Reading a catalog CSV: the text decoded from a binary stream in chunks (memory bounded by
the longest row, never by the file), its format detected, and every row checked into the
fields to write or the reason it is refused. Sans I/O: nothing here writes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from appservices.commerce.catalog.import_formats import (
    MercatoCsv,
    Refused,
    detect_format,
)
from appservices.commerce.catalog.products import (
    link_texts,
    validate_currency,
    validate_product,
    validate_url,
)
from appservices.commerce.errors import InvalidInput
from appservices.commerce.links import LinkPolicy, LinkRefused, check_links
from mercato.text_decoding import (
    SURROGATE,
    EmptyText,
    NotText,
    encoding_name,
    open_text,
)
from mercato.values import InvalidValue

SAMPLE_BYTES = 1024 * 1024  # the prefix the encoding is decided from
MAX_FIELD_CHARS = 2 * 1024 * 1024
MAX_LINE_CHARS = 4 * 1024 * 1024


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


@dataclass
class CatalogRow:
    """One row of the file, checked: `fields` to write, or why it was refused or skipped."""

    row: int  # 1-based; the header is row 1
    sku: str
    fields: dict[str, Any] | None = None
    image_url: str = ""
    refused: str = ""
    warnings: list[str] = field(default_factory=list)


def shown(text: str, limit: int = 64) -> str:
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
            self.file_warnings = [f"column '{shown(h)}' is not a Mercato column; it was ignored"
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
            guess = shown(cells[sku_at].strip()) if sku_at is not None and sku_at < len(
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
            return CatalogRow(row, shown(e.sku), refused=e.reason)
        if mapped.product is None:
            return CatalogRow(row, shown(mapped.sku), warnings=mapped.warnings)
        sku = mapped.sku
        if sku in seen:
            return CatalogRow(row, shown(sku), refused=f"duplicate SKU in this file (first "
                                                         f"seen at row {seen[sku]})")
        seen[sku] = row
        try:
            fields = validate_product(mapped.product)
        except InvalidValue as e:
            return CatalogRow(row, shown(sku), refused=self._reason(e))
        if self.link_policy is not None:
            try:
                check_links(link_texts(fields), self.link_policy)
            except LinkRefused as e:  # the same sentence a post gets
                return CatalogRow(row, shown(sku), refused=e.message)
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
