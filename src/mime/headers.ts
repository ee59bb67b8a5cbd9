/**
 * Header names and values: validation (the injection guard), RFC 2047 encoding of
 * unstructured text, and folding (RFC 5322 §2.2.3) into lines of at most 78 octets where
 * there is white space to fold at, never more than 998.
 *
 * Unstructured values round-trip exactly: for any string without CR, LF or NUL,
 * `decodeWords(unfold(value))` gives it back, including leading, trailing and repeated
 * white space (leading and trailing white space, which parsers strip, travels inside an
 * encoded-word; long runs of white space too, so that no line is white space only).
 */
import { BadHeaderError, InvalidArgumentError } from "../errors.js";
import { assertWellFormed, normalizeCharset } from "./encoding/charset.js";
import { encodeUtf8Text } from "./encoding/encoded-word.js";
import { MAX_LINE_OCTETS } from "./transfer-encoding.js";
import {
  encodeWordsWithFallback,
  formatAddressParts,
  formatGroupParts,
  isAscii,
  normalizeAddresses,
  parseAddressEntries,
  parseAddressList,
  type FormatOptions,
  type Group,
  type Mailbox,
} from "./address.js";

export type HeaderKind = "unstructured" | "address" | "raw";

export interface RenderHeaderOptions {
  /** RFC 6532: raw UTF-8 allowed (the server offered SMTPUTF8). */
  utf8: boolean;
  /** Charset for RFC 2047 encoded-words. */
  charset: string;
  /** Defaults to `headerKind(name)`. */
  kind?: HeaderKind;
  /** Preferred line length, 78 by default (RFC 5322 §2.1.1). */
  maxLineLength?: number;
}

/** RFC 5322 §2.1.1: a line is at most 998 octets, CRLF excluded. */
export { MAX_LINE_OCTETS };
const DEFAULT_WIDTH = 78;
/** RFC 2047 §2: an encoded-word is at most 75 characters... */
const MAX_ENCODED_WORD = 75;
/** ...and a line holding one at most 76. */
const MAX_ENCODED_LINE = 76;

const ADDRESS_HEADERS = new Set([
  "from", "to", "cc", "bcc", "reply-to", "sender",
  "resent-from", "resent-to", "resent-cc", "resent-bcc", "resent-reply-to", "resent-sender",
  "disposition-notification-to", "mail-followup-to", "mail-reply-to", "errors-to",
]);

const RAW_HEADERS = new Set([
  "message-id", "in-reply-to", "references", "resent-message-id", "resent-date", "date",
  "content-type", "content-disposition", "content-transfer-encoding", "content-id",
  "content-location", "content-language", "mime-version", "received", "return-path",
  "dkim-signature", "authentication-results", "autocrypt", "feedback-id",
]);

/**
 * How a header's value is rendered. Address headers are parsed and formatted; raw
 * (structured) headers are folded as given and must already be 7-bit unless `utf8`;
 * everything else (Subject, Comments, X-*) is unstructured text, RFC 2047-encoded where needed.
 */
export function headerKind(name: string): HeaderKind {
  const known = KINDS.get(name);
  if (known !== undefined) return known;
  const kind = kindOf(name);
  // Header names are few; the memo is bounded anyway.
  if (KINDS.size >= 256) KINDS.clear();
  KINDS.set(name, kind);
  return kind;
}

const KINDS = new Map<string, HeaderKind>();

function kindOf(name: string): HeaderKind {
  const lower = name.toLowerCase();
  if (ADDRESS_HEADERS.has(lower)) return "address";
  if (RAW_HEADERS.has(lower) || lower.startsWith("list-") || lower.startsWith("arc-")) return "raw";
  return "unstructured";
}

function describeChar(code: number): string {
  if (code === 0x0d) return "a carriage return (CR)";
  if (code === 0x0a) return "a line feed (LF)";
  if (code === 0x00) return "a NUL character";
  return `the control character U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** RFC 5322 §3.6.8 field-name: printable US-ASCII (33-126) except ":". */
export function assertHeaderName(name: string): void {
  if (typeof name !== "string" || name.length === 0) throw new BadHeaderError(String(name), "A header name must be a non-empty string");
  if (name.length > MAX_LINE_OCTETS - 1) throw new BadHeaderError(name.slice(0, 40), `The header name ${JSON.stringify(name.slice(0, 40))}... is longer than ${MAX_LINE_OCTETS - 1} characters`);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 33 || c > 126 || c === 0x3a) {
      const what = c === 0x3a ? '":"' : c < 33 || c === 0x7f ? describeChar(c) : `the non-ASCII character ${JSON.stringify(name[i])}`;
      throw new BadHeaderError(name, `Invalid header name ${JSON.stringify(name)}: ${what} at offset ${i} (only printable ASCII except ":" is allowed)`);
    }
  }
}

/**
 * Header names are case-insensitive (RFC 5322 §1.2.2), so `Sender` and `SENDER` are one
 * header: a block of headers given by the caller (a message's `headers`, a part's
 * `headers`) may name each header once, in any case. A second spelling is refused rather
 * than one silently winning, since which one the caller meant cannot be known.
 */
export function assertDistinctHeaderNames(names: Iterable<string>, where: string): void {
  const seen = new Map<string, string>();
  for (const name of names) {
    const earlier = seen.get(name.toLowerCase());
    if (earlier !== undefined) {
      const both = earlier === name ? `${JSON.stringify(name)} twice` : `both ${JSON.stringify(earlier)} and ${JSON.stringify(name)}`;
      throw new BadHeaderError(name, `${where} has ${both}; header names are case-insensitive (RFC 5322 §1.2.2), give each header once`);
    }
    seen.set(name.toLowerCase(), name);
  }
}

/** The injection guard: CR, LF or NUL throw BadHeaderError naming the field; a lone surrogate throws EncodingError. */
export function assertHeaderValue(field: string, value: string): void {
  if (typeof value !== "string") throw new BadHeaderError(field, `The value of ${field} must be a string, got ${value === null ? "null" : typeof value}`);
  // Three native searches rather than a loop over the characters; the first offender is named.
  const cr = value.indexOf("\r");
  const lf = value.indexOf("\n");
  const nul = value.indexOf("\0");
  if (cr !== -1 || lf !== -1 || nul !== -1) {
    const at = Math.min(...[cr, lf, nul].filter((i) => i !== -1));
    throw new BadHeaderError(field, `${field} contains ${describeChar(value.charCodeAt(at))} at offset ${at}; header values must be a single line (header injection)`);
  }
  assertWellFormed(value, field);
}

function octets(text: string): number {
  return isAscii(text) ? text.length : Buffer.byteLength(text);
}

/** A piece of a header value and the white space before it (where the line may fold). */
interface Chunk {
  sep: string;
  text: string;
  /** Whether `text` holds an encoded-word, when the producer knows (else `holdsEncodedWord`). */
  encoded?: boolean;
  /**
   * `text` is an encoded-word as the encoder wrote it: `=?`, a charset name, `?B?` or `?Q?`,
   * text from the base64 alphabet or Q's printable ASCII and `=XX`, and `?=`. Printable
   * ASCII by construction, so the injection guard in `fold` need not scan it.
   */
  fromEncoder?: true;
}

/** Whether a chunk holds (or may hold) an encoded-word: any text with "=?" counts (plain words with it are encoded). */
function holdsEncodedWord(text: string): boolean {
  return text.includes("=?");
}

/**
 * The octets of a piece of a rendered header, checked: the second injection guard, at write
 * time (after the checks at the API edge, as Python's email package does since
 * CVE-2024-6923). A piece holds no CR, LF or NUL (the only line breaks in a header are the
 * folds `fold` writes), and is ASCII unless UTF-8 headers were asked for.
 */
function checkedOctets(name: string, piece: string, utf8: boolean): number {
  let extra = 0;
  for (let i = 0; i < piece.length; i++) {
    const c = piece.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) continue;
    if (c === 0x0d) throw new BadHeaderError(name, `The rendered ${name} header holds a line break that is not a fold`);
    if (c === 0x0a || c === 0) throw new BadHeaderError(name, `The rendered ${name} header holds a bare LF or a NUL`);
    if (c >= 0x7f) {
      if (!utf8) throw new BadHeaderError(name, `The rendered ${name} header holds non-ASCII text although 7-bit headers were asked for`);
      // UTF-8: 1 octet for DEL, 2 below U+0800, 4 for a surrogate pair, else 3 (a lone surrogate is written as U+FFFD).
      if (c >= 0x800) {
        extra += 2;
        if (c >= 0xd800 && c <= 0xdbff && (piece.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
      } else if (c >= 0x80) {
        extra += 1;
      }
    }
  }
  return piece.length + extra;
}

/**
 * Greedy folding: a line breaks before a chunk's white space when the chunk would take the
 * line past `width` (or past 998 octets, even on the first line). A line holding an
 * encoded-word stops at 76 (RFC 2047 §2), so such a chunk may even leave the first line
 * with the header name alone, when the name leaves no room for it.
 *
 * Folding is also where the rendered header is guarded, piece by piece as it is written
 * rather than by scanning the result again: every piece but the encoder's encoded-words
 * goes through `checkedOctets`, every line break is followed by white space (a fold), and
 * no line passes 998 octets (RFC 5322 §2.1.1).
 */
function fold(name: string, chunks: readonly Chunk[], width: number, utf8: boolean): string {
  let out = "";
  let line = `${name}:`;
  let lineOctets = line.length;
  let lineEncoded = false;
  let hasContent = false;
  for (const chunk of chunks) {
    const size = checkedOctets(name, chunk.sep, utf8) + (chunk.fromEncoder ? chunk.text.length : checkedOctets(name, chunk.text, utf8));
    const encoded = chunk.encoded ?? holdsEncodedWord(chunk.text);
    const limit = lineEncoded || encoded ? Math.min(width, MAX_ENCODED_LINE) : width;
    if (((hasContent || encoded) && lineOctets + size > limit) || lineOctets + size > MAX_LINE_OCTETS) {
      if (!isWsp(chunk.sep.charCodeAt(0))) throw new BadHeaderError(name, `The rendered ${name} header holds a line break that is not a fold`);
      out += `${line}\r\n`;
      line = chunk.sep + chunk.text;
      lineOctets = size;
      lineEncoded = encoded;
    } else {
      line += chunk.sep + chunk.text;
      lineOctets += size;
      lineEncoded ||= encoded;
    }
    if (lineOctets > MAX_LINE_OCTETS) {
      throw new BadHeaderError(name, `${name} cannot be folded into lines of at most ${MAX_LINE_OCTETS} octets: it has a word of ${lineOctets} octets with no white space to fold at`);
    }
    hasContent = true;
  }
  if (chunks.length === 0) line += " ";
  return `${out}${line}\r\n`;
}

function isWsp(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** Splits into words and the white space before each; `trailing` is the white space after the last word. */
function splitWords(value: string): { words: string[]; seps: string[]; trailing: string } {
  const words: string[] = [];
  const seps: string[] = [];
  let i = 0;
  for (;;) {
    const wsStart = i;
    while (i < value.length && isWsp(value.charCodeAt(i))) i++;
    const ws = value.slice(wsStart, i);
    if (i >= value.length) return { words, seps, trailing: ws };
    const start = i;
    while (i < value.length && !isWsp(value.charCodeAt(i))) i++;
    seps.push(ws);
    words.push(value.slice(start, i));
  }
}

/**
 * Unstructured text as chunks: words that need it (non-ASCII in a 7-bit header, controls,
 * `=?`) encoded in runs, the rest left as they are. One pass over `value`: each word is
 * classified as it is scanned, and a run of words to encode is one range of `value`, encoded
 * where it ends without a copy. The same pass finds what `assertHeaderValue` refuses (CR,
 * LF, NUL, a lone surrogate), which then throws its error before anything is returned.
 */
function unstructuredChunks(name: string, value: string, opts: RenderHeaderOptions, width: number): Chunk[] {
  const ewMax = Math.min(MAX_ENCODED_WORD, width - 1);
  const firstLineRoom = Math.min(width, MAX_ENCODED_LINE) - name.length - 2;
  const firstMax = Math.min(ewMax, firstLineRoom);
  const length = value.length;
  const utf8 = opts.utf8;
  const chunks: Chunk[] = [];
  // The value's own error comes first. Encoding in UTF-8 throws nothing, so it may start
  // before the scan ends; another charset may be refused at the first run, so then the value
  // is checked before the scan.
  if (opts.charset !== "utf-8") assertHeaderValue(name, value);
  /** Whether the value holds CR, LF, NUL or a surrogate: then `assertHeaderValue` decides. */
  let suspect = false;
  // A run of words to encode becomes one text, the white space between them included, so
  // that it survives decoding (white space between adjacent encoded-words is dropped).
  // Next to plain text one white space character stays outside as the delimiter; any more
  // goes inside, so a long run of white space never needs a line of its own. At the start
  // and the end of the value all white space goes inside.
  let i = 0;
  while (i < length && isWsp(value.charCodeAt(i))) i++;
  if (i >= length) {
    // White space only: all of it travels encoded.
    if (length > 0) encodeRun(chunks, value, 0, length, " ", opts.charset, ewMax, firstMax);
    return chunks;
  }
  // Parsers strip white space after the colon and at the end: it must travel encoded.
  let must = i > 0;
  /** The end of the word before this one (0 before the first word). */
  let prevEnd = 0;
  /** Where the open run of words to encode starts, and the white space before it; -1: no run open. */
  let runFrom = -1;
  let runSep = "";
  let afterRun = false;
  for (let first = true; ; first = false) {
    const start = i;
    // Whether the word must be encoded is learnt as it is scanned: a control character (or
    // a Unicode line separator), in a 7-bit header anything not ASCII, or "=?" (a word
    // holding it could read as an encoded-word).
    for (; i < length; i++) {
      const c = value.charCodeAt(i);
      if (c > 0x20 && c < 0x7f) {
        if (c === 0x3d && value.charCodeAt(i + 1) === 0x3f) must = true;
      } else if (c === 0x20 || c === 0x09) {
        break;
      } else if (c < 0x20) {
        must = true;
        if (c === 0x0d || c === 0x0a || c === 0) suspect = true;
      } else {
        if (!utf8 || c <= 0x9f || c === 0x2028 || c === 0x2029) must = true;
        if (c >= 0xd800 && c <= 0xdfff) suspect = true;
      }
    }
    const end = i;
    while (i < length && isWsp(value.charCodeAt(i))) i++;
    const last = i >= length;
    if (last && end < length) must = true;
    // A word too long for a line of its own is encoded (encoded-words fold); a UTF-16 unit is at most 3 octets.
    if (!must && (Math.max(1, start - prevEnd) + end - start) * 3 > MAX_LINE_OCTETS - 1) {
      must = octets(value.slice(prevEnd, start) || " ") + octets(value.slice(start, end)) > MAX_LINE_OCTETS - 1;
    }
    if (must) {
      if (runFrom === -1) {
        runFrom = first ? 0 : prevEnd + 1;
        runSep = first ? " " : value[prevEnd]!;
      }
    } else {
      if (runFrom !== -1) {
        encodeRun(chunks, value, runFrom, start - 1, runSep, opts.charset, ewMax, firstMax);
        runFrom = -1;
        afterRun = true;
      }
      // The white space before the word; after an encoded run only its last character is left outside.
      const sep = first ? " " : afterRun ? value[start - 1]! : value.slice(prevEnd, start);
      const text = value.slice(start, end);
      // A word left plain has no "=?" (it would have been encoded).
      chunks.push({ sep, text, encoded: false });
      afterRun = false;
    }
    if (last) break;
    prevEnd = end;
    must = false;
  }
  if (runFrom !== -1) encodeRun(chunks, value, runFrom, length, runSep, opts.charset, ewMax, firstMax);
  if (suspect) assertHeaderValue(name, value);
  return chunks;
}

/**
 * `value[from, to)` as encoded-words, appended to `chunks`: the first after `sep`, the others
 * after a space; the first one shortened to `firstMax` when it starts the header. (The
 * charset is looked up here, so that a value with nothing to encode needs none.)
 */
function encodeRun(chunks: Chunk[], value: string, from: number, to: number, sep: string, charsetName: string, ewMax: number, firstMax: number): void {
  const charset = normalizeCharset(charsetName);
  const first = chunks.length === 0 ? firstMax : ewMax;
  const words = charset === "utf-8" ? encodeUtf8Text(value, from, to, ewMax, first) : encodeWordsWithFallback(value.slice(from, to), charset, "text", ewMax, first);
  for (let k = 0; k < words.length; k++) chunks.push({ sep: k === 0 ? sep : " ", text: words[k]!, encoded: true, fromEncoder: true });
}

/**
 * A string is parsed as an address list and its groups kept (`undisclosed-recipients:;`), as
 * are groups given as `{ group, members }`; mailboxes given as objects are validated.
 * The leading name's encoded-words are shortened, as in `unstructuredChunks`, so that the
 * first fits on the first line after `Name: `.
 */
function addressChunks(name: string, value: string | readonly (Mailbox | Group)[], opts: RenderHeaderOptions, width: number): Chunk[] {
  const ewMax = Math.min(MAX_ENCODED_WORD, width - 1);
  const firstLineRoom = Math.min(width, MAX_ENCODED_LINE) - name.length - 2;
  const format: FormatOptions = { utf8: opts.utf8, charset: opts.charset, encodedWordLength: ewMax };
  const first: FormatOptions = { ...format, leadEncodedWordLength: Math.min(ewMax, firstLineRoom) };
  let entries: (Mailbox | Group)[];
  if (typeof value === "string") {
    assertHeaderValue(name, value);
    entries = parseAddressList(value, name);
  } else {
    entries = value.flatMap((entry) => {
      // One entry at a time as a list of one: a null entry is refused as in a list, not read as "no addresses".
      if (typeof entry !== "object" || entry === null || !("group" in entry)) return parseAddressEntries([entry], name);
      if (!Array.isArray(entry.members)) throw new InvalidArgumentError(`${name}: the members of group ${JSON.stringify(entry.group)} must be an array of mailboxes`);
      return [{ group: entry.group, members: normalizeAddresses(entry.members, name) }];
    });
  }
  const chunks: Chunk[] = [];
  entries.forEach((entry, e) => {
    const fmt = e === 0 ? first : format;
    const parts = "group" in entry ? formatGroupParts(entry, fmt) : formatAddressParts(entry, fmt);
    parts.forEach((part, p) => {
      const comma = p === parts.length - 1 && e < entries.length - 1 ? "," : "";
      chunks.push({ sep: " ", text: part + comma });
    });
  });
  return chunks;
}

function rawChunks(name: string, value: string, opts: RenderHeaderOptions): Chunk[] {
  if (!opts.utf8 && !isAscii(value)) {
    throw new BadHeaderError(name, `${name} is a structured header and cannot hold non-ASCII text in a 7-bit message; encode it first (RFC 2047/2231) or send with SMTPUTF8`);
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new BadHeaderError(name, `${name} contains ${describeChar(c)} at offset ${i}`);
  }
  const { words, seps, trailing } = splitWords(value);
  if (words.length === 0) return value === "" ? [] : [{ sep: " ", text: value }];
  const chunks = words.map((text, i) => ({ sep: i === 0 ? ` ${seps[0]}` : (seps[i] as string), text }));
  (chunks[chunks.length - 1] as Chunk).text += trailing;
  return chunks;
}

/**
 * `Name: value\r\n`, folded. `value` is text, or mailboxes and groups for an address header
 * (a string given for an address header is parsed as an RFC 5322 address list).
 *
 * @throws BadHeaderError for a bad name, CR/LF/NUL in the value, non-ASCII in a raw header
 *   without `utf8`, or a raw value with a word too long to fit in 998 octets.
 * @throws InvalidAddressError for an unparseable address.
 * @throws EncodingError for a lone surrogate or an unknown charset.
 */
export function renderHeader(name: string, value: string | readonly (Mailbox | Group)[], opts: RenderHeaderOptions): string {
  assertHeaderName(name);
  const width = Math.min(Math.max(opts.maxLineLength ?? DEFAULT_WIDTH, 40), MAX_LINE_OCTETS);
  const kind = typeof value === "string" ? (opts.kind ?? headerKind(name)) : "address";
  let chunks: Chunk[];
  if (kind === "address") {
    chunks = addressChunks(name, value, opts, width);
  } else if (kind === "raw") {
    assertHeaderValue(name, value as string);
    chunks = rawChunks(name, value as string, opts);
  } else {
    chunks = unstructuredChunks(name, value as string, opts, width);
  }
  return fold(name, chunks, width, opts.utf8);
}

/** RFC 5322 §2.2.3 unfolding: removes every CRLF that is followed by white space. */
export function unfold(value: string): string {
  let out = "";
  let start = 0;
  for (;;) {
    const i = value.indexOf("\r\n", start);
    if (i < 0) return out + value.slice(start);
    const next = value.charCodeAt(i + 2);
    out += value.slice(start, i);
    if (!isWsp(next)) out += "\r\n";
    start = i + 2;
  }
}

/**
 * Splits a header block (up to the first empty line) into `[name, value]` pairs, values
 * unfolded and with the white space after the colon removed. For tests and small tools;
 * not a full message parser.
 */
export function parseHeaderBlock(text: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.split("\r\n");
  let current: [string, string] | undefined;
  for (const line of lines) {
    if (line === "") break;
    if (isWsp(line.charCodeAt(0))) {
      if (current) current[1] += line;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    current = [line.slice(0, colon), line.slice(colon + 1)];
    out.push(current);
  }
  return out.map(([name, value]) => {
    let i = 0;
    while (i < value.length && isWsp(value.charCodeAt(i))) i++;
    return [name, value.slice(i)];
  });
}
