// Bytes of a contacts file to lines of text, in the browser, deciding the encoding as
// mercato/text_decoding.py does for the bot and the CLI (read that module's docstrings
// for why each rule is what it is): a BOM, UTF-16's zero bytes, UTF-8 unless the bytes
// are not, then GBK/GB18030 or Big5 when they read as Chinese (whichever reading gives more
// of the common characters the server renders into the page, `common_han`), Shift_JIS when
// they read as Japanese, else Windows-1252. Lines that are not in the file's encoding are
// guessed one by one. Encodings go by their Python codec names ("gb18030", "cp950",
// "cp932"), which the page shows through the server's own table of names. Pure: no DOM, no
// network.
export const LATIN_FALLBACK = "cp1252";
const DECODER_LABELS = {
  "utf-8": "utf-8", "utf-8-sig": "utf-8", gb18030: "gb18030", cp932: "shift_jis",
  cp1252: "windows-1252", "utf-16-le": "utf-16le", "utf-16-be": "utf-16be",
};
// Windows-1252 is decoded here: Node's TextDecoder reads it as Latin-1, and the bytes
// Python's cp1252 does not define are refused (WHATWG decodes them to C1 controls).
const CP1252_UNDEFINED = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);
const CP1252_80_9F = "€\ufffd‚ƒ„…†‡ˆ‰Š‹Œ\ufffdŽ\ufffd\ufffd‘’“”•–—˜™š›œ\ufffdžŸ";
const KANA = /[\u3040-\u30ff]/u;
const JAPANESE = /[\u3000-\u30ff\u4e00-\u9fff\uff01-\uff5e]/u;
const HAN = /[\u3000-\u303f\u4e00-\u9fff\uff01-\uff5e]/u;
const CHINESE = ["gb18030", "cp950"];

export class NotText extends Error {
  constructor(reason) { super(reason); this.reason = reason; }
}

const isAscii = (bytes) => bytes.every((b) => b < 0x80);
const isUtf8 = (encoding) => ["utf-8", "utf8", "utf-8-sig"].includes(encoding);
const isWide = (encoding) => encoding.startsWith("utf-16") || encoding.startsWith("utf-32");
const startsWith = (bytes, prefix) => prefix.every((b, i) => bytes[i] === b);

function highRuns(bytes) {
  const runs = [];
  let start = -1;
  for (let i = 0; i <= bytes.length; i++) {
    const high = i < bytes.length && bytes[i] >= 0x80;
    if (high && start < 0) start = i;
    if (!high && start >= 0) { runs.push(bytes.subarray(start, i)); start = -1; }
  }
  return runs;
}

// -- counting what decodes --------------------------------------------------------------

// Python's decoders report each byte of an invalid sequence (its maximal subpart) as
// bad; `wide` counts the characters above ASCII that did decode.
function utf8Counts(bytes, wholeFile) {
  let bad = 0, wide = 0, i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) { i++; continue; }
    let need, lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b === 0xe0) { need = 2; lo = 0xa0; }
    else if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) need = 2;
    else if (b === 0xed) { need = 2; hi = 0x9f; }
    else if (b === 0xf0) { need = 3; lo = 0x90; }
    else if (b >= 0xf1 && b <= 0xf3) need = 3;
    else if (b === 0xf4) { need = 3; hi = 0x8f; }
    else { bad++; i++; continue; }
    let j = 1;
    for (; j <= need && i + j < bytes.length; j++) {
      const c = bytes[i + j];
      if (c < lo || c > hi) break;
      lo = 0x80; hi = 0xbf;
    }
    if (j > need) { wide++; i += need + 1; continue; }
    if (i + j >= bytes.length && !wholeFile) break; // a character cut at the end is fine
    bad += j;
    i += j;
  }
  return { bad, wide };
}

// GB18030 by its byte structure: the wide characters, and how many are byte pairs in the
// GB2312 block (both bytes >= 0xA1), which is how Chinese text is mostly written, or common
// characters (traditional ones are outside the block). `chars`: what they decode to.
const GB_PIECE = new TextDecoder("gb18030");
function gbCounts(bytes, commonHan) {
  let bad = 0, wide = 0, common = 0, i = 0;
  const chars = [];
  const within = (k, lo, hi) => k < bytes.length && bytes[k] >= lo && bytes[k] <= hi;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) { i++; continue; }
    if (b === 0x80 || b === 0xff) { bad++; i++; continue; }
    if (within(i + 1, 0x30, 0x39)) {
      if (within(i + 2, 0x81, 0xfe) && within(i + 3, 0x30, 0x39)) {
        const ch = GB_PIECE.decode(bytes.subarray(i, i + 4));
        chars.push(ch);
        if (commonHan && commonHan.has(ch)) common++;
        wide++;
        i += 4;
      }
      else if (i + 2 >= bytes.length || (i + 3 >= bytes.length && within(i + 2, 0x81, 0xfe))) {
        bad += bytes.length - i; // cut at the end: Python counts every byte left as bad
        break;
      } else { bad++; i++; }
      continue;
    }
    if (within(i + 1, 0x40, 0x7e) || within(i + 1, 0x80, 0xfe)) {
      const ch = GB_PIECE.decode(bytes.subarray(i, i + 2));
      chars.push(ch);
      wide++;
      if ((b >= 0xa1 && bytes[i + 1] >= 0xa1) || (commonHan && commonHan.has(ch))) common++;
      i += 2;
      continue;
    }
    bad++;
    i++;
  }
  return { bad, wide, common, chars };
}

// Python's cp950 (Microsoft's Big5): the byte pairs it maps, the few it maps otherwise than
// WHATWG's Big5 (kana, Cyrillic and circled numbers where WHATWG has private-use
// characters): [first pair, how many, first code point]. A byte it does not map is one bad
// byte, and the next is read afresh, as Python does.
const CP950_OWN = [
  [0xc6a1, 1, 0x30fe], [0xc6a2, 2, 0x309d], [0xc6a4, 1, 0x3005], [0xc6a5, 83, 0x3041],
  [0xc6f8, 7, 0x30a1], [0xc740, 63, 0x30a8], [0xc7a1, 16, 0x30e7], [0xc7b1, 2, 0x414],
  [0xc7b3, 1, 0x401], [0xc7b4, 7, 0x416], [0xc7bb, 19, 0x423], [0xc7ce, 1, 0x451],
  [0xc7cf, 26, 0x436], [0xc7e9, 10, 0x2460], [0xc7f3, 10, 0x2474],
];

function cp950Pair(lead, trail) {
  if (lead < 0xa1 || lead > 0xf9 || lead === 0xc8 || trail === undefined) return false;
  if (!((trail >= 0x40 && trail <= 0x7e) || (trail >= 0xa1 && trail <= 0xfe))) return false;
  if (lead === 0xa3) return trail <= 0xbf || trail === 0xe1;
  return lead !== 0xc7 || trail <= 0xfc;
}

function cp950Own(code) {
  for (const [first, count, point] of CP950_OWN) {
    if (code >= first && code < first + count) return String.fromCodePoint(point + code - first);
  }
  return null;
}

function decodeCp950(bytes, fatal) {
  const decoder = new TextDecoder("big5");
  let text = "", start = 0, i = 0;
  const flush = (end) => { text += decoder.decode(bytes.subarray(start, end)); };
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) { i++; continue; }
    if (cp950Pair(b, bytes[i + 1])) {
      const own = cp950Own((b << 8) | bytes[i + 1]);
      if (own !== null) { flush(i); text += own; start = i + 2; }
      i += 2;
      continue;
    }
    if (fatal) throw new TypeError("not in Big5");
    flush(i);
    text += "\ufffd";
    start = ++i;
  }
  flush(bytes.length);
  return text;
}

// A reading of the bytes as Chinese: the characters above ASCII, how many are Chinese text
// (HAN) and how many are common; null when they do not decode (_han_reading).
function hanReading(bytes, encoding, commonHan) {
  let bad, chars;
  if (encoding === "gb18030") ({ bad, chars } = gbCounts(bytes, commonHan));
  else {
    chars = [...decodeCp950(bytes, false)].filter((ch) => ch.codePointAt(0) > 127);
    bad = chars.filter((ch) => ch === "\ufffd").length;
    chars = chars.filter((ch) => ch !== "\ufffd");
  }
  if (!mostlyValid({ bad, wide: chars.length })) return null;
  return { wide: chars.length, han: chars.filter((ch) => HAN.test(ch)).length,
    common: chars.filter((ch) => commonHan.has(ch)).length };
}

const natural = ({ wide, han, common }, commonShare = 0.3) => wide > 0 && han >= 0.9 * wide
  && common >= commonShare * wide;

// A BOM is kept as U+FEFF, as Python's codecs do (readLines drops the file's own).
function decodeWith(bytes, encoding, { fatal = false, stream = false } = {}) {
  if (encoding === "utf-32") return decodeUtf32(bytes);
  if (encoding === LATIN_FALLBACK) return decodeCp1252(bytes, fatal);
  if (encoding === "cp932") return decodeCp932(bytes, fatal);
  if (encoding === "cp950") return decodeCp950(bytes, fatal);
  return new TextDecoder(DECODER_LABELS[encoding] || encoding, { fatal, ignoreBOM: true })
    .decode(bytes, { stream });
}

function decodeCp1252(bytes, fatal) {
  let text = "";
  for (const b of bytes) {
    if (fatal && CP1252_UNDEFINED.has(b)) throw new TypeError("not in Windows-1252");
    text += b >= 0x80 && b <= 0x9f ? CP1252_80_9F[b - 0x80] : String.fromCharCode(b);
  }
  return text;
}

// WHATWG's Shift_JIS is Microsoft's cp932 but for the single bytes 0xA0 and 0xFD-0xFF
// (not after a lead byte), which cp932 reads as private-use characters.
const CP932_SINGLE = { 0xa0: "\uf8f0", 0xfd: "\uf8f1", 0xfe: "\uf8f2", 0xff: "\uf8f3" };
const isCp932Lead = (b) => (b >= 0x81 && b <= 0x9f) || (b >= 0xe0 && b <= 0xfc);

function decodeCp932(bytes, fatal) {
  const decoder = new TextDecoder("shift_jis", { fatal, ignoreBOM: true });
  let text = "", start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && isCp932Lead(bytes[i])) {
      const trail = bytes[i + 1];
      if (trail >= 0x40 && trail <= 0xfc && trail !== 0x7f) i++;
      continue;
    }
    if (i < bytes.length && !(bytes[i] in CP932_SINGLE)) continue;
    text += decoder.decode(bytes.subarray(start, i));
    if (i < bytes.length) text += CP932_SINGLE[bytes[i]];
    start = i + 1;
  }
  return text;
}

// TextDecoder has no UTF-32 (the encoding standard dropped it); only with a BOM, as in Python.
function decodeUtf32(bytes) {
  const little = bytes[0] === 0xff;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let text = "";
  for (let i = 4; i + 4 <= bytes.length; i += 4) {
    const code = view.getUint32(i, little);
    text += code <= 0x10ffff && (code < 0xd800 || code > 0xdfff)
      ? String.fromCodePoint(code) : "\ufffd";
  }
  return bytes.length % 4 ? text + "\ufffd" : text;
}

function cp932Chars(bytes) {
  const text = decodeWith(bytes, "cp932");
  let strict = true;
  try { decodeWith(bytes, "cp932", { fatal: true }); } catch { strict = false; }
  const chars = [...text].filter((ch) => ch.codePointAt(0) > 127);
  const bad = strict ? 0 : chars.filter((ch) => ch === "\ufffd").length;
  return { bad, wide: strict ? chars : chars.filter((ch) => ch !== "\ufffd") };
}

const mostlyValid = ({ bad, wide }) => bad === 0 || wide >= 4 * bad;

// -- deciding the encoding ---------------------------------------------------------------

export function sniffEncoding(head, wholeFile, commonHan) {
  if (startsWith(head, [0xef, 0xbb, 0xbf])) return "utf-8-sig";
  if (startsWith(head, [0xff, 0xfe, 0, 0]) || startsWith(head, [0, 0, 0xfe, 0xff])) return "utf-32";
  if (startsWith(head, [0xff, 0xfe]) || startsWith(head, [0xfe, 0xff])) return "utf-16";
  const sample = head.subarray(0, 4096);
  if (sample.length >= 4) {
    let even = 0, odd = 0;
    sample.forEach((b, i) => { if (b === 0) { if (i % 2) odd++; else even++; } });
    const half = Math.floor(sample.length / 2);
    if (odd > half * 0.3 && even < half * 0.05) return "utf-16-le";
    if (even > half * 0.3 && odd < half * 0.05) return "utf-16-be";
  }
  refuseBinary(sample);
  if (mostlyValid(utf8Counts(head, wholeFile))) return "utf-8";
  return guessLegacy(head, commonHan);
}

function refuseBinary(sample) {
  let zeros = 0, controls = 0;
  for (const b of sample) {
    if (b === 0) zeros++;
    if ((b <= 0x08) || b === 0x0b || (b >= 0x0e && b <= 0x1f) || b === 0x7f) controls++;
  }
  if (zeros > Math.max(2, Math.floor(sample.length / 1000))) throw new NotText("it holds binary data");
  if (controls > Math.max(8, Math.floor(sample.length / 50))) {
    throw new NotText("it is full of control characters");
  }
}

export function guessLegacy(data, commonHan) {
  let end = data.length;
  while (end > 0 && data[end - 1] >= 0x80) end--;
  const trimmed = data.subarray(0, end); // maybe a character cut at the end of a sample
  if (end !== data.length && highRuns(trimmed).length) data = trimmed;
  const runs = highRuns(data);
  if (!runs.length) return "utf-8";
  const chinese = readsAsChinese(data, runs, commonHan);
  if (chinese) return chinese;
  if (readsAsJapanese(data, true)) return "cp932";
  return LATIN_FALLBACK;
}

// GBK or Big5, whichever reading gives more common characters (_reads_as_chinese).
function readsAsChinese(data, runs, commonHan) {
  if (latinShaped(runs)) return null;
  const gb = hanReading(data, "gb18030", commonHan), big5 = hanReading(data, "cp950", commonHan);
  if (big5 && natural(big5) && big5.common > (gb ? gb.common : 0)) return "cp950";
  if (chineseShaped(data, commonHan)) return "gb18030";
  return null;
}

function chineseShaped(data, commonHan) {
  const counts = gbCounts(data, commonHan);
  return mostlyValid(counts) && counts.wide > 0 && counts.common >= 0.8 * counts.wide;
}

function latinShaped(runs) {
  const total = runs.reduce((n, run) => n + run.length, 0);
  const inWords = runs.filter((run) => run.length >= 4).reduce((n, run) => n + run.length, 0);
  if (inWords * 2 >= total) return false;
  const letters = /^\p{L}+$/u;
  const latin = runs.filter((run) => run.length <= 3
    && letters.test(decodeWith(run, LATIN_FALLBACK))).length;
  return latin * 2 >= runs.length;
}

function readsAsJapanese(data, kana) {
  const { bad, wide } = cp932Chars(data);
  if (!mostlyValid({ bad, wide: wide.length })) return false;
  const japanese = wide.filter((ch) => JAPANESE.test(ch)).length;
  const kanaSeen = wide.filter((ch) => KANA.test(ch)).length;
  return wide.length > 0 && japanese >= 0.9 * wide.length && (!kana || kanaSeen * 10 >= wide.length);
}

function readsWell(line, encoding, commonHan) {
  if (encoding === "gb18030") return chineseShaped(line, commonHan);
  if (encoding === "cp950") {
    const big5 = hanReading(line, "cp950", commonHan);
    return Boolean(big5) && natural(big5, 0);
  }
  if (encoding === "cp932") return readsAsJapanese(line, false);
  return true;
}

// The line reads as Chinese in `encoding`, with as many common characters as in `other`.
function asCommon(line, encoding, other, commonHan) {
  const reading = hanReading(line, encoding, commonHan), theirs = hanReading(line, other, commonHan);
  return Boolean(reading) && natural(reading, 0) && (!theirs || reading.common >= theirs.common);
}

// -- lines -------------------------------------------------------------------------------

function decodeStrict(raw, encoding) {
  if (encoding === "gb18030" && gbCounts(raw).bad) return null; // WHATWG reads a lone 0x80 as €
  try { return decodeWith(raw, encoding, { fatal: true }); } catch { return null; }
}

// The line as text, and whether it had to be guessed or repaired (decode_line).
export function decodeLine(raw, encoding, commonHan) {
  if (isAscii(raw)) return [decodeWith(raw, "utf-8"), false];
  const utf8 = isUtf8(encoding);
  const text = decodeStrict(raw, "utf-8");
  if (text !== null) return [text, !utf8];
  const own = guessLegacy(raw, commonHan);
  let candidates;
  if (utf8 || own === encoding) candidates = [own];
  else if (own === LATIN_FALLBACK && readsWell(raw, encoding, commonHan)) candidates = [encoding, own];
  else if (CHINESE.includes(own) && CHINESE.includes(encoding)
    && asCommon(raw, encoding, own, commonHan)) candidates = [encoding, own];
  else candidates = [own, encoding];
  for (const candidate of candidates) {
    const decoded = decodeStrict(raw, candidate);
    if (decoded !== null) return [decoded, candidate !== encoding];
  }
  return [decodeWith(raw, LATIN_FALLBACK), true];
}

// The lines of one file (LineDecoder): until a line that is not ASCII, the encoding is not
// settled, and that first line settles it.
class LineDecoder {
  constructor(encoding, settled, commonHan) {
    this.encoding = encoding; this.settled = settled; this.commonHan = commonHan;
  }

  decode(raw) {
    if (isAscii(raw)) return [decodeWith(raw, "utf-8"), false];
    if (!this.settled) {
      this.settled = true;
      const text = decodeStrict(raw, "utf-8");
      if (text !== null) { this.encoding = "utf-8"; return [text, false]; }
      this.encoding = guessLegacy(raw, this.commonHan);
    }
    return decodeLine(raw, this.encoding, this.commonHan);
  }
}

function splitLines(bytes) {
  const lines = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x0a && bytes[i] !== 0x0d) continue;
    lines.push(bytes.subarray(start, i));
    if (bytes[i] === 0x0d && bytes[i + 1] === 0x0a) i++;
    start = i + 1;
  }
  if (start < bytes.length) lines.push(bytes.subarray(start));
  return lines;
}

// A whole file as lines of text (LineReader, with the whole file at hand):
// { encoding, lines: [[text, repaired]], overlong }. Raises NotText for binary data.
export function readLines(bytes, { sniff_bytes: sniffBytes, max_line_bytes: maxLineBytes,
  common_han: common }) {
  const commonHan = new Set(common);
  const blank = (b) => b === 0x20 || (b >= 0x09 && b <= 0x0d);
  if (bytes.length < sniffBytes && bytes.every(blank)) return { encoding: "", lines: [], overlong: 0 };
  let encoding = sniffEncoding(bytes.subarray(0, sniffBytes), bytes.length < sniffBytes, commonHan);
  const lines = [];
  let overlong = 0;
  if (isWide(encoding)) {
    const text = decodeWith(bytes, encoding === "utf-16" && bytes[0] === 0xfe ? "utf-16-be"
      : encoding === "utf-16" ? "utf-16-le" : encoding).replace(/^\ufeff/, "");
    for (const line of text.split(/\r\n|\n|\r/)) lines.push([line, false]);
    if (lines.length && lines[lines.length - 1][0] === "") lines.pop();
    return { encoding, lines, overlong };
  }
  const settled = !isAscii(bytes.subarray(0, sniffBytes));
  if (encoding === "utf-8-sig") bytes = bytes.subarray(3);
  const decoder = new LineDecoder(encoding === "utf-8-sig" ? "utf-8" : encoding, settled, commonHan);
  for (const raw of splitLines(bytes)) {
    if (raw.length > maxLineBytes) { overlong++; continue; }
    lines.push(decoder.decode(raw));
  }
  if (decoder.encoding !== (encoding === "utf-8-sig" ? "utf-8" : encoding)) encoding = decoder.encoding;
  return { encoding, lines, overlong };
}
