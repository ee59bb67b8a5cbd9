/**
 * The bridge to iconv-lite, made strict: iconv-lite substitutes `?` for characters a
 * charset cannot hold, and this module turns that into an `EncodingError` instead of
 * silently corrupting text. UTF-8, US-ASCII and ISO-8859-1 take fast paths through
 * `Buffer`; ISO-2022-JP (RFC 1468), which iconv-lite lacks, is built on its EUC-JP tables.
 */
import { isUtf8 as nodeIsUtf8 } from "node:buffer";
import iconv from "iconv-lite";
import { EncodingError } from "../../errors.js";

type IconvEncoding = Parameters<typeof iconv.encode>[1];

/** Common spellings mapped to the names MIME registers (IANA preferred MIME names). */
const PREFERRED: Record<string, string> = {
  utf8: "utf-8",
  "utf-8": "utf-8",
  ascii: "us-ascii",
  "us-ascii": "us-ascii",
  usascii: "us-ascii",
  latin1: "iso-8859-1",
  l1: "iso-8859-1",
  "iso8859-1": "iso-8859-1",
  iso88591: "iso-8859-1",
  "iso_8859-1": "iso-8859-1",
  "iso-8859-1": "iso-8859-1",
  sjis: "shift_jis",
  shiftjis: "shift_jis",
  "shift-jis": "shift_jis",
  "shift_jis": "shift_jis",
  eucjp: "euc-jp",
  euckr: "euc-kr",
  koi8r: "koi8-r",
  big5: "big5",
  gb2312: "gb2312",
  "iso-2022-jp": "iso-2022-jp",
  iso2022jp: "iso-2022-jp",
  csiso2022jp: "iso-2022-jp",
};

const ISO_2022_JP = "iso-2022-jp";

/** iconv-lite's conversions that are no charset: its name for each (any of its spellings finds the same codec). */
const NOT_CHARSETS = ["binary", "base64", "hex"];

/**
 * Characters allowed in a charset name (RFC 2978 mime-charset), which is also safe in
 * encoded-words. Upper-case letters are allowed too; the name is lower-cased before this check.
 */
function isCharsetNameChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x21 || c === 0x23 || c === 0x24 || c === 0x25 || c === 0x26 || c === 0x2b ||
    c === 0x2d || c === 0x5e || c === 0x5f || c === 0x60 || c === 0x7b || c === 0x7d ||
    c === 0x7e || c === 0x2e || c === 0x3a
  );
}

/**
 * The canonical (lower-case, MIME-preferred where known) name of a charset. Throws
 * `EncodingError` for a name iconv-lite does not know or one that could not be written in
 * a header.
 */
export function normalizeCharset(name: string): string {
  // Nearly always "utf-8", canonical already: no lookup at all. Another name that is
  // canonical already needs no trimming or lower-casing.
  if (name === "utf-8") return name;
  if (Object.hasOwn(PREFERRED, name)) return PREFERRED[name]!;
  const lower = name.trim().toLowerCase();
  if (Object.hasOwn(PREFERRED, lower)) return PREFERRED[lower]!;
  let ok = lower.length > 0 && lower.length <= 40;
  for (let i = 0; ok && i < lower.length; i++) ok = isCharsetNameChar(lower.charCodeAt(i));
  // "binary" would write the low byte of each UTF-16 unit (U+0141 as "A"), "base64" and "hex"
  // would read the text as their own notation: refused like unknown names.
  if (!ok || !iconv.encodingExists(lower) || NOT_CHARSETS.some((other) => iconv.getCodec(other) === iconv.getCodec(lower))) {
    throw new EncodingError(`Unknown charset ${JSON.stringify(name)}: use a charset name iconv-lite knows, such as "utf-8"`);
  }
  return lower;
}

interface WellFormedString {
  isWellFormed(): boolean;
}

function firstLoneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

/** Throws `EncodingError` naming `field` when `text` has a lone surrogate (it has no encoding in any charset). */
export function assertWellFormed(text: string, field: string): void {
  if ((text as unknown as WellFormedString).isWellFormed()) return;
  const at = firstLoneSurrogate(text);
  const unit = text.charCodeAt(at).toString(16).toUpperCase();
  throw new EncodingError(`${field} contains a lone surrogate (U+${unit} at index ${at}); it cannot be encoded in any charset`);
}

function describe(codePoint: number): string {
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, "0")} ${JSON.stringify(String.fromCodePoint(codePoint))}`;
}

function unrepresentable(codePoint: number, charset: string): EncodingError {
  return new EncodingError(`The character ${describe(codePoint)} cannot be represented in ${charset}; use utf-8 or remove it`);
}

function countByte(bytes: Buffer, byte: number): number {
  let count = 0;
  for (let at = bytes.indexOf(byte); at !== -1; at = bytes.indexOf(byte, at + 1)) count++;
  return count;
}

function countChar(text: string, char: string): number {
  let count = 0;
  for (let at = text.indexOf(char); at !== -1; at = text.indexOf(char, at + 1)) count++;
  return count;
}

/** iconv-lite's encoding, with its silent `?` substitution detected and reported. */
function iconvEncode(text: string, charset: string): Buffer {
  const bytes = iconv.encode(text, charset as IconvEncoding);
  // Every charset iconv-lite supports writes `?` as 0x3F, and no mapped character of an
  // ASCII-compatible charset produces 0x3F otherwise. More 0x3F bytes than `?` characters
  // means a substitution, or a charset (UTF-16, ...) where 0x3F also occurs inside other
  // characters; the per-character check below tells the two apart.
  if (countByte(bytes, 0x3f) === countChar(text, "?")) return bytes;
  for (const char of text) {
    if (char === "?") continue;
    const one = iconv.encode(char, charset as IconvEncoding);
    // One `?` per UTF-16 unit: single-byte codecs write two for a character past U+FFFF.
    if (one.length <= char.length && one.every((b) => b === 0x3f)) throw unrepresentable(char.codePointAt(0)!, charset);
  }
  return bytes;
}

/**
 * `text` in `charset`. Throws `EncodingError` for a lone surrogate, an unknown charset, or
 * a character the charset cannot represent.
 */
export function encodeText(text: string, charset: string): Buffer {
  assertWellFormed(text, "Text");
  const name = normalizeCharset(charset);
  switch (name) {
    case "utf-8":
      return Buffer.from(text, "utf8");
    case "us-ascii":
    case "iso-8859-1": {
      const max = name === "us-ascii" ? 0x7f : 0xff;
      for (let i = 0; i < text.length; i++) {
        if (text.charCodeAt(i) > max) throw unrepresentable(text.codePointAt(i)!, name);
      }
      return Buffer.from(text, "latin1");
    }
    case ISO_2022_JP:
      return encodeIso2022Jp(text);
    default:
      return iconvEncode(text, name);
  }
}

/**
 * `bytes` decoded from `charset`; malformed input becomes U+FFFD, never an error. An 8-bit
 * byte in US-ASCII is malformed too (each one a U+FFFD, as Python's email package reads it):
 * iconv-lite's US-ASCII table does that.
 */
export function decodeText(bytes: Uint8Array, charset: string): string {
  const name = normalizeCharset(charset);
  switch (name) {
    case "utf-8":
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
    case "iso-8859-1":
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
    case ISO_2022_JP:
      return decodeIso2022Jp(bytes);
    default:
      return iconv.decode(bytes, name as IconvEncoding);
  }
}

/** Whether `bytes` is valid UTF-8. */
export function isUtf8(bytes: Uint8Array): boolean {
  return nodeIsUtf8(bytes);
}

/**
 * Whether encoding `a + b` equals encoding `a` then `b`. False for stateful charsets
 * (ISO-2022-*, UTF-7) and those that add a byte-order mark (UTF-16, UTF-32); those are
 * encoded piece by piece wherever text is split, so that each piece decodes on its own.
 */
export function isStatelessCharset(charset: string): boolean {
  const name = normalizeCharset(charset);
  if (name === "utf-8" || name === "us-ascii" || name === "iso-8859-1") return true;
  if (name === ISO_2022_JP) return false;
  const kind = (iconv.getCodec(name as IconvEncoding).constructor as { name?: string }).name;
  return kind === "SBCSCodec" || kind === "DBCSCodec";
}

/**
 * Splits `text` into the longest runs of whole characters (never a surrogate pair apart)
 * whose encoding in `charset` fits. `measure(bytes)` must be additive over concatenation
 * (a per-byte cost, or the byte count); `fits(units)` says whether a piece of that measure
 * is small enough as the piece with that index. Each piece is encoded independently, so it decodes on its own even in a
 * stateful charset (ISO-2022-JP pieces each end in ASCII). Throws `EncodingError` when a
 * single character does not fit, or as `encodeText` does.
 */
export function encodeInPieces(
  text: string,
  charset: string,
  measure: (bytes: Uint8Array) => number,
  fits: (units: number, pieceIndex: number) => boolean,
): Buffer[] {
  const name = normalizeCharset(charset);
  const pieces: Buffer[] = [];
  if (text.length === 0) return pieces;
  const tooLong = (char: string): EncodingError =>
    new EncodingError(`The character ${describe(char.codePointAt(0)!)} does not fit in one piece once encoded in ${name}`);

  if (isStatelessCharset(name)) {
    // Encode the whole text once (which also checks every character), then find the
    // character boundaries in the bytes from each character's own width.
    const all = encodeText(text, name);
    let start = 0;
    let end = 0;
    let used = 0;
    for (const char of text) {
      const width = name === "utf-8" ? utf8Width(char) : name === "us-ascii" || name === "iso-8859-1" ? 1 : encodeText(char, name).length;
      const units = measure(all.subarray(end, end + width));
      if (!fits(used + units, pieces.length)) {
        // The character starts the next piece, and must fit that one on its own (the
        // pieces' limits may differ, as the stateful loop below also checks).
        if (end > start) {
          pieces.push(all.subarray(start, end));
          start = end;
          used = 0;
        }
        if (!fits(units, pieces.length)) throw tooLong(char);
      }
      used += units;
      end += width;
    }
    pieces.push(all.subarray(start, end));
    return pieces;
  }

  // Every character is checked first, as above: one the charset cannot hold is reported
  // before one that is too wide for its piece, in every charset alike.
  encodeText(text, name);
  let current = "";
  let currentBytes: Buffer | undefined;
  for (const char of text) {
    const trial = encodeText(current + char, name);
    if (fits(measure(trial), pieces.length)) {
      current += char;
      currentBytes = trial;
      continue;
    }
    if (currentBytes === undefined) throw tooLong(char);
    pieces.push(currentBytes);
    current = char;
    currentBytes = encodeText(char, name);
    if (!fits(measure(currentBytes), pieces.length)) throw tooLong(char);
  }
  if (currentBytes !== undefined) pieces.push(currentBytes);
  return pieces;
}

function utf8Width(char: string): number {
  const cp = char.codePointAt(0)!;
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

// ISO-2022-JP (RFC 1468): ASCII, JIS X 0201 Roman and JIS X 0208, switched by escape
// sequences; the text starts and ends in ASCII. JIS X 0208 is EUC-JP with the high bits
// cleared, so iconv-lite's EUC-JP tables do the character mapping.

const ESC = 0x1b;
const YEN = 0xa5;
const OVERLINE = 0x203e;
type JisMode = "ascii" | "roman" | "jis0208";
const DESIGNATE: Record<JisMode, readonly number[]> = {
  ascii: [ESC, 0x28, 0x42], // ESC ( B
  roman: [ESC, 0x28, 0x4a], // ESC ( J
  jis0208: [ESC, 0x24, 0x42], // ESC $ B
};

function encodeIso2022Jp(text: string): Buffer {
  const out: number[] = [];
  let mode: JisMode = "ascii";
  const enter = (next: JisMode): void => {
    if (mode !== next) out.push(...DESIGNATE[next]);
    mode = next;
  };
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c < 0x80) {
      // ESC, SO and SI would change the decoder's state: they are not text here.
      if (c === ESC || c === 0x0e || c === 0x0f) throw unrepresentable(c, ISO_2022_JP);
      enter("ascii");
      out.push(c);
      i++;
      continue;
    }
    if (c === YEN || c === OVERLINE) {
      enter("roman");
      out.push(c === YEN ? 0x5c : 0x7e);
      i++;
      continue;
    }
    // A run of other characters, mapped through EUC-JP in one call.
    let j = i;
    while (j < text.length) {
      const d = text.charCodeAt(j);
      if (d < 0x80 || d === YEN || d === OVERLINE) break;
      j++;
    }
    const run = text.slice(i, j);
    const euc = iconv.encode(run, "euc-jp");
    // iconv-lite writes a JIS X 0208 character as two bytes of 0xA1 to 0xFE, and anything
    // else with a first byte below 0xA1: half-width katakana (0x8E) and JIS X 0212 (0x8F),
    // which ISO-2022-JP lacks, or `?` for an unmapped one. A run of bytes all 0xA1 or above
    // is all JIS X 0208; otherwise the first character that is not is named.
    let valid = true;
    for (let k = 0; valid && k < euc.length; k++) valid = euc[k]! >= 0xa1;
    if (!valid) {
      for (const char of run) {
        if (iconv.encode(char, "euc-jp")[0]! < 0xa1) throw unrepresentable(char.codePointAt(0)!, ISO_2022_JP);
      }
    }
    enter("jis0208");
    for (let k = 0; k < euc.length; k++) out.push(euc[k]! & 0x7f);
    i = j;
  }
  enter("ascii");
  return Buffer.from(out);
}

type JisDecodeMode = "ascii" | "roman" | "kana" | "jis0208" | "jis0212";

/** Tolerant ISO-2022-JP decoder: also reads ESC $ @ (JIS C 6226), ESC ( I (half-width katakana) and ESC $ ( D (JIS X 0212). */
function decodeIso2022Jp(bytes: Uint8Array): string {
  let result = "";
  let mode = "ascii" as JisDecodeMode;
  let euc: number[] = [];
  const flushEuc = (): void => {
    if (euc.length === 0) return;
    const text = iconv.decode(Buffer.from(euc), "euc-jp");
    // On a pair it has no character for, iconv-lite writes U+FFFD and reads the pair's second
    // byte as the first of the next pair, garbling the rest: then each character is decoded
    // on its own, an unmapped one as one U+FFFD, as Python's codec reads it.
    if (text.includes("\ufffd")) {
      for (let k = 0; k < euc.length; ) {
        const size = euc[k] === 0x8f ? 3 : 2;
        const one = iconv.decode(Buffer.from(euc.slice(k, k + size)), "euc-jp");
        result += one.length === 1 ? one : "\ufffd";
        k += size;
      }
    } else {
      result += text;
    }
    euc = [];
  };
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b === ESC) {
      const b1 = bytes[i + 1];
      const b2 = bytes[i + 2];
      let next: typeof mode | undefined;
      let length = 3;
      if (b1 === 0x28 && (b2 === 0x42)) next = "ascii";
      else if (b1 === 0x28 && b2 === 0x4a) next = "roman";
      else if (b1 === 0x28 && b2 === 0x49) next = "kana";
      else if (b1 === 0x24 && (b2 === 0x42 || b2 === 0x40)) next = "jis0208";
      else if (b1 === 0x24 && b2 === 0x28 && bytes[i + 3] === 0x44) {
        next = "jis0212";
        length = 4;
      }
      if (next !== undefined) {
        flushEuc();
        mode = next;
        i += length;
        continue;
      }
    }
    if (b === 0x0d || b === 0x0a) {
      // A line break returns to ASCII (RFC 1468 requires it before the break anyway).
      flushEuc();
      mode = "ascii";
      result += String.fromCharCode(b);
      i++;
      continue;
    }
    if ((mode === "jis0208" || mode === "jis0212") && b >= 0x21 && b <= 0x7e) {
      const t = bytes[i + 1];
      if (t !== undefined && t >= 0x21 && t <= 0x7e) {
        if (mode === "jis0212") euc.push(0x8f);
        euc.push(b | 0x80, t | 0x80);
        i += 2;
        continue;
      }
    }
    flushEuc();
    if (mode === "kana" && b >= 0x21 && b <= 0x5f) result += String.fromCharCode(0xff40 + b);
    else if (mode === "roman" && b === 0x5c) result += "\u00a5";
    else if (mode === "roman" && b === 0x7e) result += "\u203e";
    else if (b < 0x80 && (mode === "ascii" || mode === "roman")) result += String.fromCharCode(b);
    else result += "\ufffd";
    i++;
  }
  flushEuc();
  return result;
}
