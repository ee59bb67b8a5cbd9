/**
 * RFC 2047 encoded-words: non-ASCII text in headers as `=?charset?B|Q?encoded-text?=`.
 */
import { EncodingError } from "../../errors.js";
import { BYTE_CLASS, HEX_DIGITS, Q_COMMENT, Q_PHRASE, Q_TEXT, hexValue } from "./byte-classes.js";
import { decodeText, encodeInPieces, encodeText, normalizeCharset } from "./charset.js";

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

function qWidth(bytes: Uint8Array, safe: number): number {
  let width = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    width += (BYTE_CLASS[b]! & safe) !== 0 || b === SPACE ? 1 : 3;
  }
  return width;
}

function qEncode(bytes: Uint8Array, safe: number): string {
  const out = Buffer.allocUnsafe(qWidth(bytes, safe));
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if ((BYTE_CLASS[b]! & safe) !== 0) {
      out[n++] = b;
    } else if (b === SPACE) {
      out[n++] = UNDERSCORE;
    } else {
      out[n++] = 0x3d;
      out[n++] = HEX_DIGITS[b >> 4]!;
      out[n++] = HEX_DIGITS[b & 15]!;
    }
  }
  return out.toString("latin1", 0, n);
}

const bytesOf = (bytes: Uint8Array): number => bytes.length;
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
  const whole = encodeText(text, charset);
  // RFC 1468 recommends B for ISO-2022-JP, whose JIS bytes would pass through Q unreadably.
  const useQ = !charset.startsWith("iso-2022-") && qWidth(whole, safe) <= base64Width(whole.length);
  const split = (firstBudget: number) =>
    useQ
      ? encodeInPieces(text, charset, (bytes) => qWidth(bytes, safe), (width, i) => width <= (i === 0 ? firstBudget : budget))
      : encodeInPieces(text, charset, bytesOf, (count, i) => base64Width(count) <= (i === 0 ? firstBudget : budget));
  const firstBudget = Math.min(options.firstMaxLength ?? maxLength, maxLength) - charset.length - 7;
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
  return pieces.map((piece) => prefix + (useQ ? qEncode(piece, safe) : piece.toString("base64")) + "?=");
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
