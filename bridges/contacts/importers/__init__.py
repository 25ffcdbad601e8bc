"""Contact files in, normalised and de-duplicated contacts out: streaming and sans I/O.

    reader = ContactReader(region="NO", max_contacts=10_000)
    for chunk in chunks:                      # bytes, from anywhere
        for contact in reader.feed(chunk):    # Contact(position, label, phones, emails)
            ...
        if reader.done:                       # the contact cap was reached
            break
    for contact in reader.close(): ...
    reader.report                             # counts and what could not be read

vCard (2.1, 3.0, 4.0) or CSV (Google, Outlook, plain) is recognised from the first
line, the encoding from the first bytes. Memory holds one line, one card and an
8-byte digest per distinct identifier (to merge duplicates), never the file.
"""

from __future__ import annotations

import hashlib
from array import array

from bridges.contacts.importers.csv_formats import CsvParser
from bridges.contacts.importers.model import (
    Contact,
    ContactProblem,
    ImportFailed,
    ImportReport,
    Medium,
    mask_email,
    mask_phone,
    safe_label,
)
from bridges.contacts.importers.vcard import RawContact, VCardParser
from bridges.contacts.normalise import InvalidIdentifier, normalise_email, normalise_phone
from mercato.text_decoding import (
    DEFAULT_MAX_LINE_BYTES,
    LineDecoder,
    LineReader,
    NotText,
    encoding_name,
)

__all__ = ["Contact", "ContactProblem", "ContactReader", "ImportFailed", "ImportReport",
           "Medium", "read_all"]

def _digest(medium: Medium, value: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{medium}:{value}".encode(), digest_size=8)
                          .digest(), "big") or 1


class DigestSet:
    """64-bit digests in one flat array (open addressing): at most 16 bytes each.

    A Python set of ints costs ~70 bytes per entry; merging the duplicates of 100,000
    contacts should not cost a multiple of the file they came from.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._table = array("Q", [0]) * capacity
        self._mask = capacity - 1
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, digest: int) -> bool:
        """Add a non-zero digest; True if it was not there yet."""
        table, mask = self._table, self._mask
        i = digest & mask
        while True:
            slot = table[i]
            if slot == 0:
                table[i] = digest
                self._size += 1
                if self._size * 2 > mask:
                    self._grow()
                return True
            if slot == digest:
                return False
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = self._table
        self._table = array("Q", [0]) * (len(old) * 2)
        self._mask = len(self._table) - 1
        self._size = 0
        for digest in old:
            if digest:
                self.add(digest)


class ContactReader:
    def __init__(self, *, region: str | None = None, max_contacts: int | None = None,
                 encoding: str | None = None,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.region = region or None
        self.max_contacts = max_contacts
        self.report = ImportReport()
        self.done = False
        self._lines = LineReader(encoding=encoding, max_line_bytes=max_line_bytes)
        self._parser: VCardParser | CsvParser | None = None
        self._decoder: LineDecoder | None = None
        self._seen = DigestSet()

    @property
    def bytes_read(self) -> int:
        return self._lines.bytes_read

    def feed(self, data: bytes) -> list[Contact]:
        if self.done:
            return []
        try:
            return self._lines_in(self._lines.feed(data))
        except NotText as e:
            raise _not_text(e) from None

    def close(self) -> list[Contact]:
        contacts: list[Contact] = []
        if not self.done:
            try:
                contacts = self._lines_in(self._lines.close())
            except NotText as e:
                raise _not_text(e) from None
        if not self.done and self._parser is not None:
            raw = self._parser.close()
            if raw is not None:
                contacts += self._contact(raw)
        self._finish_report()
        return contacts

    # -- lines to contacts -------------------------------------------------------------------

    def _lines_in(self, lines: list[bytes]) -> list[Contact]:
        contacts: list[Contact] = []
        for line in lines:
            if self._parser is None:
                if not line.strip():
                    continue
                self._parser = self._choose_parser(line)
            raw = self._parser.feed_line(line)
            if raw is not None:
                contacts += self._contact(raw)
                if self.done:
                    break
        return contacts

    def _choose_parser(self, first_line: bytes) -> VCardParser | CsvParser:
        self._decoder = self._lines.decoder()
        text = first_line.decode("utf-8", errors="replace")
        if text.lstrip("\ufeff \t").upper().startswith("BEGIN:VCARD"):
            self.report.format = "vCard"
            return VCardParser(self._decoder)
        return CsvParser(self._decoder)

    def _contact(self, raw: RawContact) -> list[Contact]:
        if self.max_contacts is not None and self.report.contacts >= self.max_contacts:
            self.done = True
            self.report.stopped_at_limit = self.max_contacts
            return []
        report = self.report
        report.contacts += 1
        label = safe_label(raw.name) or "(no name)"
        problems = list(raw.problems)
        phones: list[str] = []
        emails: list[str] = []
        valid = 0
        for medium, values, target in ((Medium.PHONE, raw.phones, phones),
                                       (Medium.EMAIL, raw.emails, emails)):
            for value in values:
                try:
                    normal = (normalise_phone(value, self.region) if medium is Medium.PHONE
                              else normalise_email(value))
                except InvalidIdentifier as e:
                    masked = mask_phone(value) if medium is Medium.PHONE else mask_email(value)
                    kind = "phone number" if medium is Medium.PHONE else "email address"
                    problems.append(f"{kind} {masked}: {e}" if masked else f"{kind}: {e}")
                    continue
                valid += 1
                if self._seen.add(_digest(medium, normal)):
                    target.append(normal)
        for problem in problems:
            report.add_problem(raw.position, label, problem)
        if not valid:
            report.without_identifiers += 1
            return []
        report.with_identifiers += 1
        if not phones and not emails:
            report.duplicates_merged += 1
            return []
        report.phones += len(phones)
        report.emails += len(emails)
        report.identifiers += len(phones) + len(emails)
        return [Contact(raw.position, label, tuple(phones), tuple(emails), tuple(problems))]

    def _finish_report(self) -> None:
        report = self.report
        if self._parser is None:
            raise ImportFailed("The file is empty. Send a contacts export: a .vcf file or a "
                               ".csv file.")
        encoding = self._lines.file_encoding
        if self._decoder is not None and self._lines.encoding == encoding:
            encoding = self._decoder.encoding  # settled by the first non-ASCII line
        report.encoding = encoding_name(encoding)
        if isinstance(self._parser, CsvParser):
            if self._parser.layout is not None:
                report.format = self._parser.layout.format
                report.columns = self._parser.layout.used()
            if self._parser.skipped_records:
                report.note(f"{self._parser.skipped_records} rows could not be read as CSV "
                            "and were skipped")
        else:
            if self._parser.lines_outside_cards:
                report.note(f"{self._parser.lines_outside_cards} lines outside any contact "
                            "were skipped")
            if report.contacts == 0 and not self.done:
                raise ImportFailed("There is no contact in this vCard file (no BEGIN:VCARD "
                                   "… END:VCARD).")
        if self._lines.overlong_lines:
            report.note(f"{self._lines.overlong_lines} lines were too long and were skipped")
        if report.stopped_at_limit:
            report.note(f"the file holds more than {report.stopped_at_limit:,} contacts; I read "
                        f"the first {report.stopped_at_limit:,}")


def _not_text(error: NotText) -> ImportFailed:
    return ImportFailed(f"This is not a text file ({error.reason}). Send a contacts export: "
                        "a .vcf file or a .csv file.")


def read_all(data: bytes, **options: object) -> tuple[list[Contact], ImportReport]:
    """The whole of a small file at once (tests, the CLI's dry run)."""
    reader = ContactReader(**options)  # type: ignore[arg-type]
    contacts = reader.feed(data)
    contacts += reader.close()
    return contacts, reader.report
