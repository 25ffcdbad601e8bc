"""Streaming CSV contacts: Google Contacts, Outlook, phone and webmail exports in the
languages people have (csv_headers.py), and Mercato's plain `name,phone,email`.

Lines are joined into records until their quotes balance (a quoted cell may hold line
breaks), and each record is parsed on its own, so only one record is in memory. The
header row says which export it is; columns are recognised by name, in any order.
Cells are only ever read as text: a cell such as `=cmd|' /C calc'!A0` is a name or
an unreadable number, never something to evaluate, and it is echoed back defused.

The plain format (documented in docs/contacts.md): a header row naming the columns
`name`, `phone` and `email` (any order, `phone` and `email` may repeat); a cell may
hold several numbers or addresses separated by `;` or ` ::: `.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from bridges.contacts.importers.csv_headers import Column, classify, export_format
from bridges.contacts.importers.model import CJK, ImportFailed, personal_name, safe_label
from bridges.contacts.importers.vcard import RawContact
from mercato.text_decoding import LineDecoder

MAX_RECORD_CHARS = 64 * 1024
MAX_RECORD_LINES = 500  # a notes cell may hold line breaks, but not a whole file
GOOGLE_SEPARATOR = " ::: "
_PERSONAL = (Column.FIRST, Column.MIDDLE, Column.LAST)


def _delimiter(header_line: str) -> str:
    outside = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: outside.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]
    delimiter: str
    format: str
    headers: tuple[str, ...] = ()
    family_first: bool = False  # 姓 and 名 columns: 山田太郎, not "太郎 山田"

    def used(self) -> dict[str, list[str]]:
        """The headers names, phone numbers and emails are read from, as written."""
        def headers(*kinds: Column) -> list[str]:
            return [safe_label(h.strip("\ufeff")) for h, c in zip(self.headers, self.columns,
                                                                   strict=False) if c in kinds]

        names = (headers(Column.FULL_NAME) or headers(*_PERSONAL)
                 or headers(Column.NICKNAME, Column.ORGANIZATION))
        found = {"name": names, "phone": headers(Column.PHONE), "email": headers(Column.EMAIL)}
        return {kind: columns for kind, columns in found.items() if columns}


class CsvParser:
    """Feed it lines (bytes); it returns each contact row as a RawContact."""

    def __init__(self, decoder: LineDecoder | None = None) -> None:
        self.decoder = decoder or LineDecoder("utf-8")
        self.layout: Layout | None = None
        self.rows = 0
        self.skipped_records = 0
        self._record: list[str] = []
        self._record_chars = 0
        self._quotes = 0
        self._repaired = False

    def feed_line(self, line: bytes) -> RawContact | None:
        text, repaired = self.decoder.decode(line)
        self._repaired = self._repaired or repaired
        self._record.append(text)
        self._record_chars += len(text)
        self._quotes += text.count('"')
        if self._quotes % 2:
            if self._record_chars > MAX_RECORD_CHARS or len(self._record) > MAX_RECORD_LINES:
                # An unclosed quote: drop what was gathered rather than hold the file.
                self.skipped_records += 1
                self._reset()
            return None
        record = "\n".join(self._record)
        repaired_record = self._repaired
        self._reset()
        return self._record_done(record, repaired_record)

    def close(self) -> RawContact | None:
        if not self._record:
            return None
        record = "\n".join(self._record) + '"'  # close the quote the file left open
        repaired = self._repaired
        self._reset()
        contact = self._record_done(record, repaired)
        if contact is not None:
            contact.problem("the file ends inside this row (it may have been cut short)")
        return contact

    def _reset(self) -> None:
        self._record, self._record_chars, self._quotes, self._repaired = [], 0, 0, False

    def _record_done(self, record: str, repaired: bool) -> RawContact | None:
        if not record.strip():
            return None
        if self.layout is None:
            self._read_header(record)
            return None
        try:
            cells = next(csv.reader([record], delimiter=self.layout.delimiter, strict=False))
        except (csv.Error, StopIteration):
            self.skipped_records += 1
            return None
        if not any(cell.strip() for cell in cells):
            return None
        self.rows += 1
        contact = RawContact(position=self.rows)
        self._fill(contact, cells)
        if repaired:
            contact.problem("some characters were not in the file's encoding and may show "
                            "wrongly")
        return contact

    def _read_header(self, record: str) -> None:
        delimiter = _delimiter(record.split("\n", 1)[0])
        try:
            headers = next(csv.reader([record], delimiter=delimiter, strict=False), [])
        except csv.Error:
            # A stray carriage return or the like in the first row: not a CSV we can read.
            headers = []
        columns = tuple(classify(h) for h in headers)
        if Column.PHONE not in columns and Column.EMAIL not in columns:
            raise ImportFailed(
                "I do not recognise this CSV file: its first row names no phone or email "
                "column. Export from Google Contacts or Outlook, or write a first row "
                "'name,phone,email' (see `help`).")
        family_first = any(CJK.search(h) for h, c in zip(headers, columns, strict=True)
                           if c in _PERSONAL)
        self.layout = Layout(columns, delimiter, export_format(headers), tuple(headers),
                             family_first)

    def _fill(self, contact: RawContact, cells: list[str]) -> None:
        assert self.layout is not None
        names: dict[Column, str] = {}
        plain = self.layout.format == "CSV"
        for column, cell in zip(self.layout.columns, cells, strict=False):
            value = cell.strip()
            if not value or column is Column.OTHER:
                continue
            contact.fields += 1
            if column in (Column.PHONE, Column.EMAIL):
                target = contact.phones if column is Column.PHONE else contact.emails
                for part in value.split(GOOGLE_SEPARATOR):
                    target.extend(p.strip() for p in (part.split(";") if plain else [part])
                                  if p.strip())
            else:
                names.setdefault(column, value)
        if len(cells) > len(self.layout.columns) and any(c.strip() for c in
                                                         cells[len(self.layout.columns):]):
            contact.problem("the row has more cells than the header; the extra ones were "
                            "skipped")
        personal = " ".join(names[c] for c in _PERSONAL if c in names)
        if self.layout.family_first:
            personal = personal_name(names.get(Column.FIRST, ""), names.get(Column.LAST, ""),
                                     names.get(Column.MIDDLE, ""))
        contact.name = (names.get(Column.FULL_NAME) or personal or names.get(Column.NICKNAME)
                        or names.get(Column.ORGANIZATION) or "")
