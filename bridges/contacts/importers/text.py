"""Bytes to lines of text, incrementally, whatever the encoding. Sans I/O.

`LineReader.feed(chunk)` returns the complete lines in a chunk (as bytes, without
their line ends); `close()` returns the last one. UTF-16 files are transcoded to
UTF-8 first so lines can be split on bytes; everything else stays bytes, because a
vCard may declare a different charset per property. `decode_line` then turns a line
into text: the file's encoding first, UTF-8 or a guessed legacy encoding (GBK,
Windows-1252) for lines that are not in it (files pasted together from two sources).

Memory stays bounded by `max_line_bytes`: a longer line is dropped (and counted), so
a file with no line breaks at all cannot grow the buffer.
"""

from __future__ import annotations

import codecs
import re

from bridges.contacts.importers.model import ImportFailed

SNIFF_BYTES = 64 * 1024
DEFAULT_MAX_LINE_BYTES = 256 * 1024
_LINE_END = re.compile(rb"\r\n|\n|\r")
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_HIGH_BYTES = bytes(range(0x80, 0x100))
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def sniff_encoding(head: bytes) -> str:
    """The encoding of a file from its first bytes: BOM, UTF-16 zero bytes, or content."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise ImportFailed("The file is in UTF-32, which I cannot read; save it as UTF-8.")
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even_zeros = sample[0::2].count(0)
        odd_zeros = sample[1::2].count(0)
        half = len(sample) // 2
        if odd_zeros > half * 0.3 and even_zeros < half * 0.05:
            return "utf-16-le"
        if even_zeros > half * 0.3 and odd_zeros < half * 0.05:
            return "utf-16-be"
    if b"\x00" in sample:
        raise ImportFailed("This is not a text file (it holds binary data). Send a contacts "
                           "export: a .vcf file or a .csv file.")
    if len(_CONTROL.findall(sample)) > max(8, len(sample) // 50):
        raise ImportFailed("This is not a text file (it is full of control characters). Send "
                           "a contacts export: a .vcf file or a .csv file.")
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)  # a character cut at the end is fine
        return "utf-8"
    except UnicodeDecodeError:
        return guess_legacy(head)


def guess_legacy(data: bytes) -> str:
    """GBK when non-ASCII bytes come in pairs (Chinese), else Windows-1252 (Europe)."""
    trimmed = data.rstrip(_HIGH_BYTES)  # maybe a character cut at the end of a sample
    if trimmed != data and _HIGH_RUN.search(trimmed):
        data = trimmed
    runs = _HIGH_RUN.findall(data)
    if not runs:
        return "utf-8"
    paired = sum(1 for run in runs if len(run) % 2 == 0)
    if paired / len(runs) >= 0.8:
        try:
            data.decode("gbk")
            return "gbk"
        except UnicodeDecodeError:
            pass
    return "cp1252"


def decode_line(raw: bytes, encoding: str) -> tuple[str, bool]:
    """The line as text, and whether it had to be guessed or repaired.

    Valid UTF-8 is taken as UTF-8 (legacy text almost never is); a line that is not is
    read in the file's legacy encoding, or in the one its own bytes suggest when that
    differs (a GBK line pasted into a Windows-1252 file), and then flagged.
    """
    if raw.isascii():
        return raw.decode("ascii"), False
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")
    try:
        return raw.decode("utf-8"), not utf8
    except UnicodeDecodeError:
        pass
    own = guess_legacy(raw)
    candidates = [own, encoding] if utf8 or own != encoding else [encoding]
    for candidate in candidates:
        try:
            return raw.decode(candidate), candidate != encoding or utf8
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("cp1252", errors="replace"), True


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
    """Split a byte stream into lines; see the module docstring."""

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
        if encoding.lower().replace("_", "-").startswith("utf-16"):
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
            data, self._head = bytes(self._head), bytearray()
            self._sniff(data)
            if self.file_encoding == "utf-8-sig":
                data = data[len(codecs.BOM_UTF8):]
        return self._split(self._transcode(data, final=False))

    def _sniff(self, head: bytes) -> None:
        self._choose(sniff_encoding(head))
        self.settled = self._transcoder is not None or not head.isascii()

    def decoder(self) -> LineDecoder:
        return LineDecoder(self.encoding or "utf-8", settled=self.settled)

    def close(self) -> list[bytes]:
        lines: list[bytes] = []
        if not self.file_encoding:
            data, self._head = bytes(self._head), bytearray()
            if not data.strip():
                return []
            self._sniff(data)
            if self.file_encoding == "utf-8-sig":
                data = data[len(codecs.BOM_UTF8):]
            lines = self._split(self._transcode(data, final=False))
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
