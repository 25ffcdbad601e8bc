"""Bytes of an uploaded file to text, whatever program wrote it. Sans I/O, streaming.

Shops send catalogs and people send address books as Excel, Outlook, Google and phone
exports: UTF-8 with or without a BOM, UTF-16 and UTF-32 (with a BOM, or UTF-16 without
one), GBK/GB18030 (Chinese Excel and WeChat), Big5 (Excel and Outlook in Taiwan and Hong
Kong), Shift_JIS (Japanese Excel and Outlook) and Windows-1252 (Western Excel) as the Latin
fallback. This module is the one place that
decides which, so the catalog import and the contact importers read a file the same way:

- `sniff_encoding(head)` decides from the first bytes (`NotText` for binary data);
- `open_text(stream)` gives a file-like stream as text, read in chunks (the catalog);
- `LineReader.feed(chunk)` splits pushed chunks into lines of bytes, transcoding the
  wide encodings to UTF-8, and `LineDecoder` turns each line into text, guessing again for
  a line that is not in the file's encoding (the contact importers: a vCard may declare a
  charset per property, and address books get pasted together from two sources).

Memory stays bounded: a sample of the head, one chunk, and one line (`max_line_bytes`).
"""

from __future__ import annotations

import codecs
import io
import re
from typing import IO, Any

from mercato.common_han import COMMON_HAN

SNIFF_BYTES = 64 * 1024  # the head the encoding is decided from, unless told otherwise
DEFAULT_MAX_LINE_BYTES = 256 * 1024
LATIN_FALLBACK = "cp1252"

ENCODING_NAMES = {
    "utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 (little-endian, no BOM)", "utf-16-be": "UTF-16 (big-endian, no BOM)",
    "utf-32": "UTF-32", "gb18030": "GBK/GB18030", "cp950": "Big5", "cp932": "Shift_JIS",
    "cp1252": "Windows-1252",
}

# Undecodable bytes become lone surrogates (U+DC00 + byte) in `open_text`, so a reader can
# refuse just the line that has them, naming the byte, and read the rest of the file.
UNDECODABLE = "mercato.undecodable"
SURROGATE = re.compile("[\ud800-\udfff]")

_LINE_END = re.compile(rb"\r\n|\n|\r")
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_HIGH_BYTES = bytes(range(0x80, 0x100))
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_KANA = re.compile("[\u3040-\u30ff]")
_JAPANESE = re.compile("[\u3000-\u30ff\u4e00-\u9fff\uff01-\uff5e]")
# Chinese text: CJK punctuation, the unified ideographs and full-width forms (not kana, not
# the compatibility ideographs or the rare extensions a wrong reading lands in).
_HAN = re.compile("[\u3000-\u303f\u4e00-\u9fff\uff01-\uff5e]")
_COMMON_HAN = frozenset(COMMON_HAN)
CHINESE = ("gb18030", "cp950")  # GBK (mainland) and Big5 (Taiwan, Hong Kong)


def _undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start:error.end]
    return "".join(chr(0xDC00 + b) for b in bad), error.end


codecs.register_error(UNDECODABLE, _undecodable)


class NotText(ValueError):
    """The bytes are not a text file; `reason` says what they look like instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EmptyText(NotText):
    """The file holds nothing but white space."""

    def __init__(self) -> None:
        super().__init__("it is empty")


def encoding_name(encoding: str) -> str:
    """The encoding as people know it ("GBK/GB18030", not "gb18030")."""
    return ENCODING_NAMES.get(encoding, encoding)


def is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")


def is_wide(encoding: str) -> bool:
    """UTF-16 and UTF-32 (ASCII bytes inside their characters: lines cannot be split raw)."""
    return encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32"))


# -- deciding the encoding ---------------------------------------------------------------

def sniff_encoding(head: bytes, *, whole_file: bool = False) -> str:
    """The encoding of a file from its first bytes: a BOM, UTF-16's zero bytes, else what
    the content reads as. `whole_file` says the head is all there is (no character cut)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even_zeros, odd_zeros = sample[0::2].count(0), sample[1::2].count(0)
        half = len(sample) // 2
        if odd_zeros > half * 0.3 and even_zeros < half * 0.05:
            return "utf-16-le"
        if even_zeros > half * 0.3 and odd_zeros < half * 0.05:
            return "utf-16-be"
    _refuse_binary(sample)
    if _mostly_valid(head, "utf-8", whole_file):
        return "utf-8"
    return guess_legacy(head)


def _refuse_binary(sample: bytes) -> None:
    # A stray NUL or control character is a damaged line, not a binary file.
    if sample.count(0) > max(2, len(sample) // 1000):
        raise NotText("it holds binary data")
    if len(_CONTROL.findall(sample)) > max(8, len(sample) // 50):
        raise NotText("it is full of control characters")


def _mostly_valid(data: bytes, encoding: str, whole_file: bool) -> bool:
    """The bytes decode, but for a few bad ones (a line pasted from another file)."""
    text = _decoded(data, encoding, whole_file)
    bad = len(SURROGATE.findall(text))
    wide = sum(1 for ch in text if ord(ch) > 127) - bad
    return bad == 0 or wide >= 4 * bad


def _decoded(data: bytes, encoding: str, whole_file: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors=UNDECODABLE)
    return str(decoder.decode(data, final=whole_file))  # a character cut at the end is fine


def guess_legacy(data: bytes) -> str:
    """Bytes that are not UTF-8: GB18030 or Big5 (cp950) when they read as Chinese,
    Shift_JIS (cp932) when they read as Japanese, else Windows-1252 (Western Europe)."""
    trimmed = data.rstrip(_HIGH_BYTES)  # maybe a character cut at the end of a sample
    if trimmed != data and _HIGH_RUN.search(trimmed):
        data = trimmed
    runs = _HIGH_RUN.findall(data)
    if not runs:
        return "utf-8"
    chinese = _reads_as_chinese(data, runs)
    if chinese:
        return chinese
    if _reads_as_japanese(data):
        return "cp932"
    return LATIN_FALLBACK


def _reads_as_chinese(data: bytes, runs: list[bytes]) -> str | None:
    """GBK or Big5, whichever reading gives more of the common characters (the wrong one
    gives rare characters, symbols and kana); else GBK when it reads as `_chinese_shaped`
    (names are often not among the common characters)."""
    if _latin_shaped(runs):
        return None
    gb, big5 = _han_reading(data, "gb18030"), _han_reading(data, "cp950")
    if big5 and _natural(big5) and big5[2] > (gb[2] if gb else 0):
        return "cp950"
    if _chinese_shaped(data):
        return "gb18030"
    return None


def _han_reading(data: bytes, encoding: str) -> tuple[int, int, int] | None:
    """The characters above ASCII the bytes read as, how many are Chinese text (`_HAN`) and
    how many are common; None when they do not decode."""
    if not _mostly_valid(data, encoding, True):
        return None
    wide = [ch for ch in _decoded(data, encoding, True)
            if ord(ch) > 127 and not SURROGATE.match(ch)]
    return (len(wide), sum(1 for ch in wide if _HAN.match(ch)),
            sum(1 for ch in wide if ch in _COMMON_HAN))


def _natural(reading: tuple[int, int, int], common_share: float = 0.3) -> bool:
    """Reads as natural Chinese: all but a few characters Chinese, enough of them common."""
    wide, han, common = reading
    return wide > 0 and han >= 0.9 * wide and common >= common_share * wide


def _chinese_shaped(data: bytes) -> bool:
    """Chinese text in GBK is mostly byte pairs in the GB2312 block (both bytes >= 0xA1),
    or common traditional characters (outside it); Windows-1252 text read as GBK pairs an
    accented letter with the ASCII one after it, a rare character."""
    if not _mostly_valid(data, "gb18030", True):
        return False
    text = _decoded(data, "gb18030", True)
    wide = [(ch, ch.encode("gb18030")) for ch in text
            if ord(ch) > 127 and not SURROGATE.match(ch)]
    common = sum(1 for ch, b in wide if (len(b) == 2 and b[0] >= 0xA1 and b[1] >= 0xA1)
                 or ch in _COMMON_HAN)
    return bool(wide) and common >= 0.8 * len(wide)


def _latin_shaped(runs: list[bytes]) -> bool:
    """Windows-1252 text has accented letters alone or in twos ("ção"), which GBK would
    also read as a character; Chinese is written in words of two characters or more."""
    in_words = sum(len(run) for run in runs if len(run) >= 4)
    if in_words * 2 >= sum(len(run) for run in runs):
        return False
    latin = sum(1 for run in runs if len(run) <= 3 and run.decode(LATIN_FALLBACK, "replace")
                .isalpha())
    return latin * 2 >= len(runs)


def _reads_as_japanese(data: bytes, *, kana: bool = True) -> bool:
    """Japanese in Shift_JIS decodes to kana and kanji, with some kana: Windows-1252 text
    read as Shift_JIS gives odd kanji and errors, and never kana (their lead bytes are
    0x82 and 0x83, which Western text does not use). One line of a file known to be
    Japanese may be kanji only (a name): `kana=False`."""
    if not _mostly_valid(data, "cp932", True):
        return False
    wide = [ch for ch in _decoded(data, "cp932", True)
            if ord(ch) > 127 and not SURROGATE.match(ch)]
    japanese = sum(1 for ch in wide if _JAPANESE.match(ch))
    kana_seen = sum(1 for ch in wide if _KANA.match(ch))
    return (bool(wide) and japanese >= 0.9 * len(wide)
            and (not kana or kana_seen * 10 >= len(wide)))


def _reads_well(line: bytes, encoding: str) -> bool:
    """The line has the shape of text in the file's CJK encoding (any line reads in
    Windows-1252)."""
    if encoding == "gb18030":
        return _chinese_shaped(line)
    if encoding == "cp950":
        big5 = _han_reading(line, "cp950")
        return big5 is not None and _natural(big5, common_share=0)
    if encoding == "cp932":
        return _reads_as_japanese(line, kana=False)
    return True


def _as_common(line: bytes, encoding: str, other: str) -> bool:
    """The line reads as Chinese in `encoding`, with as many common characters as in `other`."""
    reading, theirs = _han_reading(line, encoding), _han_reading(line, other)
    if reading is None or not _natural(reading, common_share=0):
        return False
    return theirs is None or reading[2] >= theirs[2]


# -- a file-like stream as text (pull) ---------------------------------------------------

def _read_sample(stream: IO[bytes], size: int) -> bytes:
    sample = bytearray()
    while len(sample) < size and (chunk := stream.read(size - len(sample))):
        sample += chunk
    return bytes(sample)


class _Prefixed(io.RawIOBase):
    """The sample already read, then the rest of the stream."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix, self._rest = memoryview(prefix), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def open_text(stream: IO[bytes], *, sample_bytes: int = SNIFF_BYTES
              ) -> tuple[str, io.TextIOWrapper]:
    """The encoding, and the stream as text with universal line ends left as they are
    (newline=""); bytes not valid in the encoding read as lone surrogates (`SURROGATE`).
    Raises EmptyText, or NotText for binary data."""
    sample = _read_sample(stream, sample_bytes)
    if not sample.strip():
        raise EmptyText()
    encoding = sniff_encoding(sample, whole_file=len(sample) < sample_bytes)
    text = io.TextIOWrapper(io.BufferedReader(_Prefixed(sample, stream)), encoding=encoding,
                            errors=UNDECODABLE, newline="")
    return encoding, text


# -- pushed chunks to lines (push) -------------------------------------------------------

def decode_line(raw: bytes, encoding: str) -> tuple[str, bool]:
    """The line as text, and whether it had to be guessed or repaired.

    Valid UTF-8 is taken as UTF-8 (legacy text almost never is); a line that is not is
    read in the file's legacy encoding, or in the one its own bytes clearly suggest when
    that differs (a GBK line pasted into a Windows-1252 file), and then flagged.
    """
    if raw.isascii():
        return raw.decode("ascii"), False
    utf8 = is_utf8(encoding)
    try:
        return raw.decode("utf-8"), not utf8
    except UnicodeDecodeError:
        pass
    own = guess_legacy(raw)
    if utf8 or own == encoding:
        candidates = [own]
    elif own == LATIN_FALLBACK and _reads_well(raw, encoding):
        candidates = [encoding, own]  # a short Chinese line may look Latin too ("王")
    elif own in CHINESE and encoding in CHINESE and _as_common(raw, encoding, own):
        candidates = [encoding, own]  # a name of rare characters reads in GBK and Big5
    else:
        candidates = [own, encoding]
    for candidate in candidates:
        try:
            return raw.decode(candidate), candidate != encoding
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode(LATIN_FALLBACK, errors="replace"), True


class LineDecoder:
    """Decodes the lines of one file; `settled` is False while only ASCII has been seen,
    and the first line that is not settles the file's encoding (without a warning)."""

    def __init__(self, encoding: str, *, settled: bool = True) -> None:
        self.encoding = encoding
        self.settled = settled

    def decode(self, raw: bytes) -> tuple[str, bool]:
        if raw.isascii():
            return raw.decode("ascii"), False
        if not self.settled:
            self.settled = True
            try:
                text = raw.decode("utf-8")
                self.encoding = "utf-8"
                return text, False
            except UnicodeDecodeError:
                self.encoding = guess_legacy(raw)
        return decode_line(raw, self.encoding)


class LineReader:
    """Split a byte stream into lines (bytes, without their line ends); see the module
    docstring. A line longer than `max_line_bytes` is dropped and counted, so a file with
    no line breaks at all cannot grow the buffer. `feed` raises NotText for binary data."""

    def __init__(self, *, encoding: str | None = None,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self.encoding = encoding or ""  # what lines are decoded with (after transcoding)
        self.file_encoding = encoding or ""  # what the file is in
        self.settled = bool(encoding)  # False when the sniffed head was plain ASCII
        self.overlong_lines = 0
        self.bytes_read = 0
        self._head = bytearray()
        self._buffer = bytearray()
        self._skipping = False  # inside an overlong line, until its end
        self._transcoder: codecs.IncrementalDecoder | None = None
        if encoding:
            self._choose(encoding)

    def _choose(self, encoding: str) -> None:
        self.file_encoding = encoding
        if is_wide(encoding):
            self._transcoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            self.encoding = "utf-8"
        else:
            self.encoding = "utf-8" if encoding == "utf-8-sig" else encoding

    def feed(self, data: bytes) -> list[bytes]:
        self.bytes_read += len(data)
        if not self.file_encoding:
            self._head += data
            if len(self._head) < SNIFF_BYTES:
                return []
            data, self._head = self._sniff(bytes(self._head), whole_file=False), bytearray()
        return self._split(self._transcode(data, final=False))

    def _sniff(self, head: bytes, *, whole_file: bool) -> bytes:
        """Decide the encoding from the head; the head without its UTF-8 BOM."""
        self._choose(sniff_encoding(head, whole_file=whole_file))
        self.settled = self._transcoder is not None or not head.isascii()
        return head[len(codecs.BOM_UTF8):] if self.file_encoding == "utf-8-sig" else head

    def decoder(self) -> LineDecoder:
        return LineDecoder(self.encoding or "utf-8", settled=self.settled)

    def close(self) -> list[bytes]:
        lines: list[bytes] = []
        if not self.file_encoding:
            data, self._head = bytes(self._head), bytearray()
            if not data.strip():
                return []
            lines = self._split(self._transcode(self._sniff(data, whole_file=True),
                                                final=False))
        lines += self._split(self._transcode(b"", final=True))
        if self._buffer and not self._skipping:
            lines.append(bytes(self._buffer).rstrip(b"\r"))
        self._buffer.clear()
        return lines

    def _transcode(self, data: bytes, *, final: bool) -> bytes:
        if self._transcoder is None:
            return data
        text = self._transcoder.decode(data, final=final)
        return text.lstrip("\ufeff").encode("utf-8")

    def _split(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        if self._buffer.endswith(b"\r") and data and not data.startswith(b"\n"):
            del self._buffer[-1:]  # a lone CR (old Mac line end) held back from the last chunk
            self._take(b"", lines, line_ends=True)
        for match in _LINE_END.finditer(data):
            end = match.end()
            if match.group() == b"\r" and end == len(data):
                break  # maybe the first half of \r\n: wait for the next chunk
            self._take(data[start:match.start()], lines, line_ends=True)
            start = end
        self._take(data[start:], lines, line_ends=False)
        return lines

    def _take(self, piece: bytes, lines: list[bytes], *, line_ends: bool) -> None:
        if self._skipping:
            if line_ends:
                self._skipping = False
            return
        if len(self._buffer) + len(piece) > self.max_line_bytes:
            self.overlong_lines += 1
            self._buffer.clear()
            self._skipping = not line_ends
            return
        if line_ends:
            if self._buffer:
                line = bytes(self._buffer) + piece
                lines.append(line[:-1] if line.endswith(b"\r") else line)
                self._buffer.clear()
            else:
                lines.append(piece)
        else:
            self._buffer += piece
