/**
 * RFC 2047 encoded-words: non-ASCII text in headers as `=?charset?B|Q?encoded-text?=`.
 */
import { EncodingError } from "../../errors.js";
import { BYTE_CLASS, HEX_DIGITS, Q_COMMENT, Q_PHRASE, Q_TEXT, hexValue } from "./byte-classes.js";
import { assertWellFormed, decodeText, encodeInPieces, encodeText, normalizeCharset } from "./charset.js";

/**
 * Where the encoded-words will stand, which limits the characters Q may leave as they are:
 * `text` — an unstructured header such as Subject (RFC 2047 §5(1));
 * `comment` — inside a `( comment )` (§5(2));
 * `phrase` — a display name in an address header (§5(3)), the strictest.
 */
export type EncodedWordContext = "text" | "phrase" | "comment";

export interface EncodeWordsOptions {
  /** The charset to encode in; default `"utf-8"`. */
  charset?: string;
  context: EncodedWordContext;
  /** The longest encoded-word to produce; default and RFC 2047 §2 maximum: 75. */
  maxLength?: number;
  /**
   * The longest first encoded-word (at most `maxLength`), for the room left on a header's
   * first line. When it cannot hold the first character, the first word is as long as the others.
   */
  firstMaxLength?: number;
}

const SAFE: Record<EncodedWordContext, number> = { text: Q_TEXT, phrase: Q_PHRASE, comment: Q_COMMENT };
const UNDERSCORE = 0x5f;
const SPACE = 0x20;

/** Q width of `bytes[from, to)`: 1 for a byte Q leaves as it is (or a space, written `_`), 3 for `=XX`. */
function qWidth(bytes: Uint8Array, safe: number, from = 0, to = bytes.length): number {
  const classes = BYTE_CLASS;
  let width = 0;
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    width += (classes[b]! & safe) !== 0 || b === SPACE ? 1 : 3;
  }
  return width;
}

function qEncode(bytes: Uint8Array, safe: number): string {
  const classes = BYTE_CLASS;
  const hex = HEX_DIGITS;
  const out = Buffer.allocUnsafe(qWidth(bytes, safe));
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if ((classes[b]! & safe) !== 0) {
      out[n++] = b;
    } else if (b === SPACE) {
      out[n++] = UNDERSCORE;
    } else {
      out[n++] = 0x3d;
      out[n++] = hex[b >> 4]!;
      out[n++] = hex[b & 15]!;
    }
  }
  return out.toString("latin1", 0, n);
}

const base64Width = (byteCount: number): number => Math.ceil(byteCount / 3) * 4;

/**
 * `text` as one or more encoded-words, each at most `maxLength` characters, for the caller
 * to join with a space (folding white space). B or Q is chosen for the whole text, whichever
 * is shorter (Q on a tie, as it stays readable; always B for ISO-2022-*). Characters are never split across words,
 * and each word is encoded on its own, so it decodes independently even in a stateful
 * charset such as ISO-2022-JP (RFC 2047 §5 rule on self-contained words).
 * An empty text gives no words. Throws `EncodingError` as `encodeText` does, or when
 * `maxLength` cannot hold a single character.
 */
export function encodeWords(text: string, options: EncodeWordsOptions): string[] {
  const charset = normalizeCharset(options.charset ?? "utf-8");
  const maxLength = options.maxLength ?? 75;
  const safe = SAFE[options.context];
  if (text.length === 0) return [];
  // "=?" charset "?" encoding "?" encoded-text "?="
  const budget = maxLength - charset.length - 7;
  if (budget < 4) {
    throw new EncodingError(`An encoded-word of at most ${maxLength} characters cannot hold any text in ${charset}`);
  }
  if (charset === "utf-8") {
    assertWellFormed(text, "Text");
    return encodeUtf8Words(text, 0, text.length, safe, Math.min(options.firstMaxLength ?? maxLength, maxLength) - 12, budget);
  }
  const whole = encodeText(text, charset);
  // RFC 1468 recommends B for ISO-2022-JP, whose JIS bytes would pass through Q unreadably.
  const useQ = !charset.startsWith("iso-2022-") && qWidth(whole, safe) <= base64Width(whole.length);
  const firstBudget = Math.min(options.firstMaxLength ?? maxLength, maxLength) - charset.length - 7;
  // US-ASCII and ISO-8859-1 (one byte a character) are cut in the bytes already encoded;
  // other charsets character by character. (UTF-8 returned above.)
  const inBytes = charset === "us-ascii" || charset === "iso-8859-1";
  const split = (first: number): Buffer[] =>
    inBytes
      ? splitEncoded(whole, charset, useQ, safe, first, budget)
      : useQ
        ? encodeInPieces(text, charset, (bytes) => qWidth(bytes, safe), (width, i) => width <= (i === 0 ? first : budget))
        : encodeInPieces(text, charset, (bytes) => bytes.length, (count, i) => base64Width(count) <= (i === 0 ? first : budget));
  let pieces: Buffer[] | undefined;
  if (firstBudget < budget && firstBudget >= 4) {
    try {
      pieces = split(firstBudget);
    } catch (error) {
      // The first character does not fit in the shorter first word: every word is full size.
      if (!(error instanceof EncodingError)) throw error;
    }
  }
  pieces ??= split(budget);
  const prefix = `=?${charset}?${useQ ? "Q" : "B"}?`;
  const words: string[] = new Array(pieces.length);
  for (let i = 0; i < pieces.length; i++) words[i] = prefix + (useQ ? qEncode(pieces[i]!, safe) : pieces[i]!.toString("base64")) + "?=";
  return words;
}

/**
 * `encodeWords(text.slice(from, to), { charset: "utf-8", context: "text", maxLength, firstMaxLength })`
 * for a caller that has already checked the text: `text[from, to)` is not empty and whole
 * characters of a well-formed string (no lone surrogate). The header renderer encodes runs
 * of an unstructured value it has checked once, so the run is neither copied nor checked again.
 */
export function encodeUtf8Text(text: string, from: number, to: number, maxLength: number, firstMaxLength: number): string[] {
  // "=?utf-8?" "B|Q" "?" encoded-text "?=": 12 characters around the text.
  return encodeUtf8Words(text, from, to, Q_TEXT, Math.min(firstMaxLength, maxLength) - 12, maxLength - 12);
}

/** `=XX` for every byte (Q's escape). */
const Q_ESCAPES = Array.from({ length: 256 }, (_, b) => `=${b.toString(16).toUpperCase().padStart(2, "0")}`);
/** `=XX=XX` for every character of two UTF-8 bytes (U+0080 to U+07FF: Latin, Greek, Cyrillic, ...), from U+0080. */
const Q_TWO_BYTES = Array.from({ length: 0x800 - 0x80 }, (_, i) => Q_ESCAPES[0xc0 | ((i + 0x80) >> 6)]! + Q_ESCAPES[0x80 | ((i + 0x80) & 63)]!);
/** Base64 of 12 bits: two characters, for every value (a group of 3 bytes is two lookups). */
const BASE64_PAIRS = (() => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return Array.from({ length: 4096 }, (_, v) => alphabet[v >> 6]! + alphabet[v & 63]!);
})();
const BASE64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** UTF-8 bytes of one word's text, reused (an RFC 2047 word holds at most 75 characters, so far fewer bytes). */
const scratch = new Uint8Array(256);

/** The UTF-8 length of the code point at `text[i]` (a surrogate pair is one code point of 4). */
function utf8Length(c: number): number {
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 4 : 3;
}

/** The UTF-8 bytes of the code point starting at `text[i]` (well-formed text), into `out` from `at`; returns the count. */
function utf8Bytes(text: string, i: number, out: Uint8Array, at: number): number {
  let c = text.charCodeAt(i);
  if (c < 0x80) {
    out[at] = c;
    return 1;
  }
  if (c < 0x800) {
    out[at] = 0xc0 | (c >> 6);
    out[at + 1] = 0x80 | (c & 63);
    return 2;
  }
  if (c >= 0xd800 && c <= 0xdbff) {
    c = 0x10000 + ((c - 0xd800) << 10) + (text.charCodeAt(i + 1) - 0xdc00);
    out[at] = 0xf0 | (c >> 18);
    out[at + 1] = 0x80 | ((c >> 12) & 63);
    out[at + 2] = 0x80 | ((c >> 6) & 63);
    out[at + 3] = 0x80 | (c & 63);
    return 4;
  }
  out[at] = 0xe0 | (c >> 12);
  out[at + 1] = 0x80 | ((c >> 6) & 63);
  out[at + 2] = 0x80 | (c & 63);
  return 3;
}

/** Q text of `text[from, to)`: runs of characters Q leaves as they are copied whole, `_` for a space, `=XX` for each other byte. */
function qText(text: string, from: number, to: number, safe: number): string {
  const classes = BYTE_CLASS;
  let out = "";
  let run = from;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80 && (classes[c]! & safe) !== 0) continue;
    if (i > run) out += text.slice(run, i);
    if (c === SPACE) {
      out += "_";
    } else if (c >= 0x80 && c < 0x800) {
      out += Q_TWO_BYTES[c - 0x80]!;
    } else {
      const n = utf8Bytes(text, i, scratch, 0);
      for (let k = 0; k < n; k++) out += Q_ESCAPES[scratch[k]!]!;
      if (n === 4) i++;
    }
    run = i + 1;
  }
  return run === from ? text.slice(from, to) : run < to ? out + text.slice(run, to) : out;
}

/** Base64 of the UTF-8 bytes of `text[from, to)`. */
function bText(text: string, from: number, to: number): string {
  // At most 3 bytes per UTF-16 unit; a caller asking for words longer than RFC 2047's gets its own buffer.
  const bytes = (to - from) * 3 <= scratch.length ? scratch : new Uint8Array((to - from) * 3);
  let n = 0;
  for (let i = from; i < to; i++) {
    const length = utf8Bytes(text, i, bytes, n);
    n += length;
    if (length === 4) i++;
  }
  let out = "";
  const whole = n - (n % 3);
  for (let k = 0; k < whole; k += 3) {
    const group = (bytes[k]! << 16) | (bytes[k + 1]! << 8) | bytes[k + 2]!;
    out += BASE64_PAIRS[group >> 12]! + BASE64_PAIRS[group & 4095]!;
  }
  if (n - whole === 1) {
    const b0 = bytes[whole]!;
    out += `${BASE64_CHARS[b0 >> 2]}${BASE64_CHARS[(b0 & 3) << 4]}==`;
  } else if (n - whole === 2) {
    const b0 = bytes[whole]!;
    const b1 = bytes[whole + 1]!;
    out += `${BASE64_CHARS[b0 >> 2]}${BASE64_CHARS[((b0 & 3) << 4) | (b1 >> 4)]}${BASE64_CHARS[(b1 & 15) << 2]}=`;
  }
  return out;
}

/**
 * `encodeWords` for UTF-8 of `text[from, to)`, worked out on the string: the bytes of each
 * character follow from its code point, so one pass counts the bytes and the Q width (to
 * choose B or Q), and Q is cut and encoded from the characters. B is cut as its bytes are:
 * each word ends where its room does, moved back to the start of the character there. The
 * same words as the character-by-character cut (`encodeInPieces`) gives, and the same error
 * when a character does not fit.
 */
function encodeUtf8Words(text: string, from: number, to: number, safe: number, firstBudget: number, budget: number): string[] {
  const classes = BYTE_CLASS;
  // One pass: the byte count and the Q width of the whole text.
  let byteCount = 0;
  let qTotal = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) {
      byteCount += 1;
      qTotal += (classes[c]! & safe) !== 0 || c === SPACE ? 1 : 3;
    } else {
      const length = utf8Length(c);
      byteCount += length;
      qTotal += 3 * length;
      if (length === 4) i++;
    }
  }
  const useQ = qTotal <= base64Width(byteCount);
  // Most header texts fit one word: then no character can be too wide either.
  const total = useQ ? qTotal : base64Width(byteCount);
  if (total <= Math.min(firstBudget, budget) || (total <= budget && !(firstBudget < budget && firstBudget >= 4))) {
    if (useQ) return [`=?utf-8?Q?${qText(text, from, to, safe)}?=`];
    return [`=?utf-8?B?${byteCount > NATIVE_BASE64 ? Buffer.from(text.slice(from, to), "utf8").toString("base64") : bText(text, from, to)}?=`];
  }
  if (!useQ) return bWords(Buffer.from(text.slice(from, to), "utf8"), firstBudget, budget);
  let ends: number[] | undefined;
  if (firstBudget < budget && firstBudget >= 4) ends = cutQ(text, from, to, safe, firstBudget, budget, false);
  ends ??= cutQ(text, from, to, safe, budget, budget, true)!;
  const words: string[] = new Array(ends.length);
  let start = from;
  for (let w = 0; w < words.length; w++) {
    words[w] = `=?utf-8?Q?${qText(text, start, ends[w]!, safe)}?=`;
    start = ends[w]!;
  }
  return words;
}

/** From this many bytes, B text comes from Node's base64 (one native round trip costs about as much as a JavaScript loop over this many). */
const NATIVE_BASE64 = 24;

/**
 * Where each word ends (a string index) when `text[from, to)` is cut into the longest runs
 * of whole characters whose Q text fits `firstBudget` for the first word and `budget` for
 * the others. A character that does not fit the word it comes to: undefined, or
 * (`strict`) the EncodingError `encodeInPieces` throws.
 */
function cutQ(text: string, from: number, to: number, safe: number, firstBudget: number, budget: number, strict: boolean): number[] | undefined {
  const classes = BYTE_CLASS;
  const ends: number[] = [];
  let used = 0;
  for (let i = from; i < to; ) {
    const c = text.charCodeAt(i);
    const length = c < 0x80 ? 1 : utf8Length(c);
    const units = c < 0x80 ? ((classes[c]! & safe) !== 0 || c === SPACE ? 1 : 3) : 3 * length;
    const room = ends.length === 0 ? firstBudget : budget;
    if (units > room) {
      if (!strict) return undefined;
      throw tooWide(text.codePointAt(i)!);
    }
    if (used + units > room) {
      ends.push(i);
      used = 0;
    }
    used += units;
    i += length === 4 ? 2 : 1;
  }
  ends.push(to);
  return ends;
}

/**
 * B encoded-words of the UTF-8 `bytes` (more than one word holds), each with as many whole
 * characters as fit: the first in `firstBudget` characters of encoded text, the others in
 * `budget`. A word holds whole groups of 3 bytes, at least one, so only a character of 4
 * bytes can fail to fit, in a word of 3: then a short first word falls back to full size
 * (if that character is its first or the one after it, where the character-by-character
 * cut gave up), and any other word refuses it.
 */
function bWords(bytes: Buffer, firstBudget: number, budget: number): string[] {
  const room = Math.floor(budget / 4) * 3;
  let firstRoom = room;
  if (firstBudget < budget && firstBudget >= 4) {
    firstRoom = Math.floor(firstBudget / 4) * 3;
    if (firstRoom === 3 && bytes[cutBytes(bytes, 0, 3)]! >= 0xf0) firstRoom = room;
  }
  const words: string[] = [];
  for (let start = 0; start < bytes.length; ) {
    const end = cutBytes(bytes, start, start === 0 ? firstRoom : room);
    if (end === start) throw tooWide(bytes.toString("utf8", start).codePointAt(0)!);
    words.push(`=?utf-8?B?${bytes.toString("base64", start, end)}?=`);
    start = end;
  }
  return words;
}

/**
 * The end of the longest run of whole characters from `start` (the first byte of one) in at
 * most `room` bytes: the room's end, moved back to the first byte of a character.
 */
function cutBytes(bytes: Uint8Array, start: number, room: number): number {
  let end = Math.min(start + room, bytes.length);
  // Past the end `undefined & 0xc0` is 0, and `bytes[start]` is a first byte: the loop stops there at the latest.
  while ((bytes[end]! & 0xc0) === 0x80) end--;
  return end;
}

function tooWide(codePoint: number): EncodingError {
  return new EncodingError(`The character ${describeCodePoint(codePoint)} does not fit in one piece once encoded in utf-8`);
}

/**
 * The longest runs of `bytes` (a charset of one byte a character: US-ASCII, ISO-8859-1)
 * that fit an encoded-word: the first in `firstBudget` characters of encoded text, the
 * others in `budget`. The same cut as `encodeInPieces` makes (and the same error when a
 * character does not fit the word it comes to), found in one pass over the bytes already
 * encoded.
 */
function splitEncoded(bytes: Buffer, charset: string, useQ: boolean, safe: number, firstBudget: number, budget: number): Buffer[] {
  const n = bytes.length;
  const pieces: Buffer[] = [];
  let start = 0;
  let used = 0;
  for (let i = 0; i < n; i++) {
    const units = useQ ? qWidth(bytes, safe, i, i + 1) : 1;
    const room = pieces.length === 0 ? firstBudget : budget;
    if ((useQ ? units : base64Width(units)) > room) {
      throw new EncodingError(`The character ${describeCodePoint(bytes[i]!)} does not fit in one piece once encoded in ${charset}`);
    }
    if ((useQ ? used + units : base64Width(used + units)) > room) {
      pieces.push(bytes.subarray(start, i));
      start = i;
      used = 0;
    }
    used += units;
  }
  pieces.push(bytes.subarray(start, n));
  return pieces;
}

function describeCodePoint(codePoint: number): string {
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, "0")} ${JSON.stringify(String.fromCodePoint(codePoint))}`;
}

/**
 * Whether a word must be encoded to appear in a header: it has non-ASCII or control
 * characters, or it looks like an encoded-word (`=?...?=`) and would be decoded as one.
 */
export function needsEncoding(word: string): boolean {
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c >= 0x7f || (c < 0x20 && c !== 0x09)) return true;
  }
  const open = word.indexOf("=?");
  return open !== -1 && word.indexOf("?=", open + 2) !== -1;
}

interface ParsedWord {
  charset: string | undefined;
  bytes: Buffer;
  raw: string;
  end: number;
}

function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** The encoded-word starting at `start` (which holds "=?"), or undefined if there is none. */
function parseWordAt(value: string, start: number): ParsedWord | undefined {
  const charsetEnd = value.indexOf("?", start + 2);
  if (charsetEnd === -1 || charsetEnd === start + 2 || charsetEnd - start > 80) return undefined;
  const encoding = value.charCodeAt(charsetEnd + 1) | 0x20;
  if ((encoding !== 0x62 && encoding !== 0x71) || value.charCodeAt(charsetEnd + 2) !== 0x3f) return undefined;
  const textStart = charsetEnd + 3;
  let textEnd = textStart;
  // The encoded text runs to "?=" and holds no white space; scanning stops at either.
  for (;;) {
    if (textEnd >= value.length) return undefined;
    const c = value.charCodeAt(textEnd);
    if (isWsp(c)) return undefined;
    if (c === 0x3f) {
      if (value.charCodeAt(textEnd + 1) === 0x3d) break;
      return undefined;
    }
    textEnd++;
  }
  for (let i = start + 2; i < charsetEnd; i++) {
    if (isWsp(value.charCodeAt(i))) return undefined;
  }
  // RFC 2231 §5 allows a language after the charset: "utf-8*en".
  const label = value.slice(start + 2, charsetEnd).split("*", 1)[0]!;
  let charset: string | undefined;
  try {
    charset = normalizeCharset(label);
  } catch {
    // An unknown charset: the caller keeps the word as it is.
  }
  const encoded = value.slice(textStart, textEnd);
  const bytes = encoding === 0x62 ? Buffer.from(encoded, "base64") : qDecode(encoded);
  return { charset, bytes, raw: value.slice(start, textEnd + 2), end: textEnd + 2 };
}

function qDecode(encoded: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded.charCodeAt(i);
    if (c === UNDERSCORE) {
      out.push(SPACE);
    } else if (c === 0x3d && i + 2 < encoded.length && hexValue(encoded.charCodeAt(i + 1)) >= 0 && hexValue(encoded.charCodeAt(i + 2)) >= 0) {
      out.push((hexValue(encoded.charCodeAt(i + 1)) << 4) | hexValue(encoded.charCodeAt(i + 2)));
      i += 2;
    } else if (c <= 0xff) {
      out.push(c);
    } else {
      out.push(...Buffer.from(String.fromCharCode(c), "utf8"));
    }
  }
  return Buffer.from(out);
}

/**
 * Decodes the encoded-words in a header value, tolerantly: B and Q in either case, any
 * charset iconv-lite knows (an unknown one leaves the word as it was), a language suffix
 * (`utf-8*en`), missing base64 padding, and words not separated from surrounding text.
 * The value is unfolded first. White space between two adjacent encoded-words is dropped
 * (RFC 2047 §6.2), and adjacent words in the same charset are decoded as one byte
 * sequence, so a character split across words by a careless encoder is still read.
 */
export function decodeWords(value: string): string {
  const unfolded = unfold(value);
  let result = "";
  // The current run of adjacent encoded-words in one charset, not yet decoded.
  let runCharset: string | undefined;
  let runBytes: Buffer[] = [];
  const flushRun = (): void => {
    if (runCharset !== undefined) result += decodeText(Buffer.concat(runBytes), runCharset);
    runCharset = undefined;
    runBytes = [];
  };
  let afterWord = false;
  let textStart = 0;
  let i = 0;
  while (i < unfolded.length) {
    const start = unfolded.indexOf("=?", i);
    if (start === -1) break;
    const word = parseWordAt(unfolded, start);
    if (word === undefined) {
      i = start + 1;
      continue;
    }
    if (!(afterWord && isAllWhiteSpace(unfolded, textStart, start))) {
      flushRun();
      result += unfolded.slice(textStart, start);
    }
    if (word.charset === undefined) {
      flushRun();
      result += word.raw;
      afterWord = false;
    } else {
      if (word.charset !== runCharset) flushRun();
      runCharset = word.charset;
      runBytes.push(word.bytes);
      afterWord = true;
    }
    textStart = i = word.end;
  }
  flushRun();
  return result + unfolded.slice(textStart);
}

function isAllWhiteSpace(value: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    if (!isWsp(value.charCodeAt(i))) return false;
  }
  return true;
}

/** RFC 5322 §2.2.3 unfolding: a CRLF (or bare LF) followed by white space is removed. */
function unfold(value: string): string {
  if (!value.includes("\n")) return value;
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x0d && value.charCodeAt(i + 1) === 0x0a && (value.charCodeAt(i + 2) === 0x20 || value.charCodeAt(i + 2) === 0x09)) {
      i++;
      continue;
    }
    if (c === 0x0a && (value.charCodeAt(i + 1) === 0x20 || value.charCodeAt(i + 1) === 0x09)) continue;
    out += value[i];
  }
  return out;
}
