"""A streaming vCard 2.1 / 3.0 / 4.0 reader: one line in, at most one finished card out.

Written for this bridge because vobject reads a whole file into memory. It keeps one
card and one logical line at a time, and reads only what finding people needs (names,
TEL, EMAIL); everything else (PHOTO, NOTE, …) is skipped without being buffered.

Handles what phones and mail apps write: folded lines, vCard 2.1's bare parameters and
QUOTED-PRINTABLE soft line breaks with a CHARSET per property, grouped properties
(`item1.TEL`), `TEL;VALUE=uri:tel:…`, escaped text, and cards nested inside cards
(vCard 2.1's AGENT), whose contents are ignored up to a depth limit.
"""

from __future__ import annotations

import binascii
import codecs
import re
from dataclasses import dataclass, field

from bridges.contacts.importers.model import personal_name
from mercato.text_decoding import LineDecoder

WANTED = frozenset({b"BEGIN", b"END", b"FN", b"N", b"ORG", b"TEL", b"EMAIL"})
MAX_VALUE_BYTES = 16 * 1024
MAX_NESTING = 8
MAX_VALUES_PER_CARD = 200
_ENCODINGS_21 = {"QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT", "B"}
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
# A header that may name an encoding or a charset (else its value is read as it is):
# ENCODING=…, CHARSET=…, or vCard 2.1's bare QUOTED-PRINTABLE / BASE64 / B.
_MAY_ENCODE = re.compile(rb"(?i)ENCODING|CHARSET|;\s*(QUOTED-PRINTABLE|BASE64|B)\s*(;|$)")


@dataclass
class RawContact:
    """A card or row as written, before numbers and addresses are normalised."""

    position: int
    name: str = ""
    name_is_final: bool = False  # FN was read: N and ORG no longer change the name
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fields: int = 0

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)


def unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        char = match.group(1)
        return "\n" if char in "nN" else char

    return _UNESCAPE.sub(replace, text)


def split_components(text: str) -> list[str]:
    """The `;`-separated parts of a structured value (N), each unescaped."""
    parts, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if char == ";":
            parts.append(unescape("".join(current)))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append(unescape("".join(current)))
    return parts


def name_from_n(value: str) -> str:
    """Family;Given;Additional;Prefix;Suffix as people write it (姓名 without a space)."""
    parts = [p.strip() for p in split_components(value)] + [""] * 5
    family, given, additional, prefix, suffix = parts[:5]
    return personal_name(given, family, additional, prefix, suffix)


def _split_header(line: bytes) -> tuple[bytes, bytes] | None:
    """`group.NAME;params` and the value, split at the first colon outside quotes."""
    start = 0
    while True:
        colon = line.find(b":", start)
        if colon < 0:
            return None
        if line.count(b'"', 0, colon) % 2 == 0:
            return line[:colon], line[colon + 1:]
        start = colon + 1


def _property_name(first_line: bytes) -> bytes:
    head = first_line.split(b":", 1)[0].split(b";", 1)[0]
    return head.rsplit(b".", 1)[-1].strip().upper()


def _parameters(header: bytes) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for part in header.split(b";")[1:]:
        text = part.decode("ascii", errors="replace").strip()
        if not text:
            continue
        key, sep, value = text.partition("=")
        if not sep:  # vCard 2.1: TEL;CELL;QUOTED-PRINTABLE
            key, value = ("ENCODING" if text.upper() in _ENCODINGS_21 else "TYPE"), text
        params.setdefault(key.strip().upper(), []).extend(
            v.strip().strip('"') for v in value.split(","))
    return params


class VCardParser:
    """Feed it lines (bytes); it returns each card when its END:VCARD is read."""

    def __init__(self, decoder: LineDecoder | None = None) -> None:
        self.decoder = decoder or LineDecoder("utf-8")
        self.cards = 0
        self.lines_outside_cards = 0
        self._card: RawContact | None = None
        self._depth = 0
        self._pending = bytearray()
        self._pending_name = b""
        self._has_pending = False
        self._pending_wanted = False
        self._pending_too_long = False
        self._pending_qp = False
        self._last_piece_soft_break = False

    # -- lines to logical lines ------------------------------------------------------------

    def feed_line(self, line: bytes) -> RawContact | None:
        if self._has_pending and self._pending_qp and self._last_piece_soft_break:
            if self._pending_wanted and not self._pending_too_long:
                del self._pending[-1:]  # the "=" of a quoted-printable soft line break
            self._extend(line)
            return None
        if self._has_pending and line[:1] in (b" ", b"\t"):
            self._extend(line[1:])
            return None
        finished = self._flush()
        if line.strip():
            self._start(line)
        return finished

    def close(self) -> RawContact | None:
        finished = self._flush()
        if finished is None and self._card is not None:
            finished, self._card = self._card, None
            finished.problem("the file ends inside this contact (it may have been cut short)")
            self._depth = 0
        return finished

    def _start(self, line: bytes) -> None:
        self._has_pending = True
        head = line.split(b":", 1)[0]
        self._pending_name = head.split(b";", 1)[0].rsplit(b".", 1)[-1].strip().upper()
        self._pending_wanted = self._pending_name in WANTED
        self._pending_too_long = False
        self._pending_qp = b"QUOTED-PRINTABLE" in head.upper()
        self._pending.clear()
        self._extend(line)

    def _extend(self, piece: bytes) -> None:
        self._last_piece_soft_break = piece.endswith(b"=")
        if not self._pending_wanted or self._pending_too_long:
            return
        if len(self._pending) + len(piece) > MAX_VALUE_BYTES:
            self._pending_too_long = True
            self._pending.clear()
            return
        self._pending += piece

    def _flush(self) -> RawContact | None:
        if not self._has_pending:
            return None
        self._has_pending = False
        if not self._pending_wanted:
            if self._card is None and self._depth == 0:
                self.lines_outside_cards += 1
            elif self._card is not None and self._depth == 1:
                self._card.fields += 1
            return None
        if self._pending_too_long:
            if self._card is not None:
                self._card.problem("a field was too long and was skipped")
            return None
        line = bytes(self._pending)
        self._pending.clear()
        return self._logical_line(line)

    # -- logical lines ---------------------------------------------------------------------

    def _logical_line(self, line: bytes) -> RawContact | None:
        split = _split_header(line)
        if split is None:
            if self._card is None:
                self.lines_outside_cards += 1
            return None
        header, value = split
        # The name read when the line started, unless a quoted colon makes that unsure.
        name = _property_name(header) if b'"' in header else self._pending_name
        if name == b"BEGIN" and value.strip().upper() == b"VCARD":
            return self._begin()
        if name == b"END" and value.strip().upper() == b"VCARD":
            return self._end()
        if self._card is None:
            self.lines_outside_cards += 1
            return None
        if self._depth != 1:
            return None  # inside a nested card (AGENT): not this contact's data
        self._card.fields += 1
        if name in (b"BEGIN", b"END"):
            return None
        text = self._text(header, value, self._card)
        if text is None:
            return None
        card = self._card
        if name == b"FN":
            if not card.name_is_final and unescape(text).strip():
                card.name, card.name_is_final = unescape(text).strip(), True
        elif name == b"N":
            if not card.name_is_final:
                card.name = card.name or name_from_n(text)
        elif name == b"ORG":
            if not card.name_is_final:
                card.name = card.name or split_components(text)[0].strip()
        elif len(card.phones) + len(card.emails) >= MAX_VALUES_PER_CARD:
            card.problem(f"more than {MAX_VALUES_PER_CARD} numbers and addresses; "
                         "the rest were skipped")
        elif name == b"TEL":
            card.phones.append(unescape(text).strip())
        elif name == b"EMAIL":
            card.emails.append(unescape(text).strip())
        return None

    def _begin(self) -> RawContact | None:
        if self._card is None:
            self.cards += 1
            self._card = RawContact(position=self.cards)
            self._depth = 1
            return None
        self._depth += 1
        if self._depth > MAX_NESTING:
            self._card.problem("cards nested too deep inside it were skipped")
        return None

    def _end(self) -> RawContact | None:
        if self._card is None:
            self.lines_outside_cards += 1
            return None
        self._depth -= 1
        if self._depth > 0:
            return None
        finished, self._card = self._card, None
        return finished

    def _text(self, header: bytes, value: bytes, card: RawContact) -> str | None:
        if not _MAY_ENCODE.search(header):  # most lines: plain text in the file's encoding
            return self._decoded(value, card)
        params = _parameters(header)
        encoding = (params.get("ENCODING") or [""])[0].upper()
        if encoding == "QUOTED-PRINTABLE":
            try:
                value = binascii.a2b_qp(value)
            except (binascii.Error, ValueError):
                card.problem("a quoted-printable field could not be decoded")
                return None
        elif encoding in ("B", "BASE64"):
            return None  # binary (a photo or key), never a name, number or address
        charset = (params.get("CHARSET") or [""])[0]
        if charset:
            try:
                codecs.lookup(charset)
                return value.decode(charset)
            except (LookupError, UnicodeDecodeError):
                pass
        return self._decoded(value, card)

    def _decoded(self, value: bytes, card: RawContact) -> str:
        text, repaired = self.decoder.decode(value)
        if repaired:
            card.problem("some characters were not in the file's encoding and may show "
                         "wrongly")
        return text
