/**
 * MIME header parameters (`; name=value`): RFC 2045 tokens and quoted strings, and RFC 2231
 * extended values (charset, percent-encoding) and continuations for what those cannot hold.
 */
import { BadHeaderError, EncodingError } from "../../errors.js";
import { ATTR_CHAR, BYTE_CLASS, HEX_DIGITS, TOKEN, hexValue } from "./byte-classes.js";
import { decodeText, encodeInPieces, isUtf8, normalizeCharset } from "./charset.js";

export interface FormatParameterOptions {
  /** The charset of an extended (RFC 2231) value; default `"utf-8"`. */
  charset?: string;
}

/**
 * The longest segment produced. A segment on a folded line of its own, with the leading
 * space and the `;` after it, is then at most 72 characters, inside the 78 of RFC 5322 §2.1.1.
 */
export const MAX_SEGMENT_LENGTH = 70;

function isAttributeName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0x7f || (BYTE_CLASS[c]! & ATTR_CHAR) === 0) return false;
  }
  return true;
}

function pctWidth(bytes: Uint8Array): number {
  let width = 0;
  for (let i = 0; i < bytes.length; i++) width += (BYTE_CLASS[bytes[i]!]! & ATTR_CHAR) !== 0 ? 1 : 3;
  return width;
}

function pctEncode(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out += (BYTE_CLASS[b]! & ATTR_CHAR) !== 0 ? String.fromCharCode(b) : `%${String.fromCharCode(HEX_DIGITS[b >> 4]!, HEX_DIGITS[b & 15]!)}`;
  }
  return out;
}

/** An RFC 5322 quoted-string: `"` and `\` escaped with a backslash. */
export function quoteString(text: string): string {
  let out = '"';
  for (const ch of text) out += ch === '"' || ch === "\\" ? `\\${ch}` : ch;
  return `${out}"`;
}

/**
 * A parameter as one or more `name=value` segments, for the caller to join with `;` and
 * folding white space:
 * - a short ASCII token: `name=value`;
 * - short printable ASCII: `name="quoted \"value\""`;
 * - long printable ASCII: `name*0="..."`, `name*1="..."` (RFC 2231 §3);
 * - anything else: `name*=utf-8''%E2%82%AC` or, when long, `name*0*=utf-8''...`,
 *   `name*1*=...` (RFC 2231 §4, §4.1).
 * No segment is longer than `MAX_SEGMENT_LENGTH`, and each holds whole characters (and
 * whole escapes), so it decodes on its own even in a decoder that reads segment by segment.
 * Throws `BadHeaderError` naming the parameter for CR, LF or NUL in the value or a name
 * that is not an RFC 2231 attribute.
 */
export function formatParameter(name: string, value: string, options: FormatParameterOptions = {}): string[] {
  if (!isAttributeName(name)) {
    throw new BadHeaderError(name, `Invalid parameter name ${JSON.stringify(name)}: use letters, digits and -_.!#$&+^\`|~`);
  }
  let printable = true;
  let token = value.length > 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x0d || c === 0x0a || c === 0x00) {
      throw new BadHeaderError(name, `The ${name} parameter contains CR, LF or NUL, which could inject headers; remove them`);
    }
    if (c < 0x20 || c > 0x7e) printable = false;
    // ' % and * are token characters but mean something in RFC 2231 values; quoting them
    // keeps readers (Python's email package among them) from misparsing the value.
    else if ((BYTE_CLASS[c]! & TOKEN) === 0 || c === 0x27 || c === 0x25 || c === 0x2a) token = false;
  }

  // An encoded-word look-alike inside a quoted value is decoded by some readers (Python's
  // email package among them), so such a value goes out RFC 2231-encoded instead.
  if (printable && !value.includes("=?")) {
    const plain = token ? `${name}=${value}` : `${name}=${quoteString(value)}`;
    if (plain.length <= MAX_SEGMENT_LENGTH) return [plain];
    return asciiContinuations(name, value);
  }

  const charset = normalizeCharset(options.charset ?? "utf-8");
  const head = `${charset}''`;
  let pieces: Buffer[];
  try {
    pieces = encodeInPieces(value, charset, pctWidth, (width, index) => {
      const prefix = `${name}*${index}*=`.length + (index === 0 ? head.length : 0);
      return prefix + width <= MAX_SEGMENT_LENGTH;
    });
  } catch (error) {
    if (error instanceof EncodingError) {
      throw new EncodingError(`The ${name} parameter cannot be encoded: ${error.message}`, { cause: error });
    }
    throw error;
  }
  // One piece fits as `name*0*=...`, so it fits as `name*=...`, two characters shorter.
  if (pieces.length === 1) return [`${name}*=${head}${pctEncode(pieces[0]!)}`];
  return pieces.map((piece, index) => `${name}*${index}*=${index === 0 ? head : ""}${pctEncode(piece)}`);
}

function asciiContinuations(name: string, value: string): string[] {
  const segments: string[] = [];
  let current = "";
  // Width of the quoted content so far, escapes included, plus the two quotes.
  let width = 2;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    const w = ch === '"' || ch === "\\" ? 2 : 1;
    const prefix = `${name}*${segments.length}=`.length;
    if (current.length > 0 && prefix + width + w > MAX_SEGMENT_LENGTH) {
      segments.push(`${name}*${segments.length}=${quoteString(current)}`);
      current = "";
      width = 2;
    }
    current += ch;
    width += w;
  }
  segments.push(`${name}*${segments.length}=${quoteString(current)}`);
  return segments;
}

interface RawParameter {
  value: string;
  /** Whether the value is in RFC 2231 extended (percent-encoded) form. */
  extended: boolean;
}

interface Collected {
  plain?: RawParameter;
  single?: RawParameter;
  sections: Map<number, RawParameter>;
}

/**
 * The parameters of a header value such as `text/plain; charset="utf-8"` or
 * `attachment; filename*0*=utf-8''%E2%82%AC; filename*1=.txt`, by lower-case name, decoded:
 * quoted strings unquoted, RFC 2231 continuations joined in order (up to the first missing
 * section) and extended values decoded from their charset (any charset iconv-lite knows;
 * an unknown one is read as UTF-8 when the bytes are valid UTF-8, else ISO-8859-1).
 * A leading value without `=` (the type or disposition) is skipped, as are comments.
 * When a parameter appears both plain and extended, the extended one wins (RFC 2231 §4).
 * Encoded-words inside quoted values (a common non-standard form) are returned as they are.
 */
export function parseParameters(headerValue: string): Map<string, string> {
  const collected = new Map<string, Collected>();
  for (const item of splitItems(headerValue)) {
    const eq = item.indexOf("=");
    if (eq <= 0) continue;
    let key = item.slice(0, eq).trim().toLowerCase();
    let value = item.slice(eq + 1).trim();
    if (value.startsWith('"')) value = unquote(value);
    let extended = false;
    if (key.endsWith("*")) {
      extended = true;
      key = key.slice(0, -1);
    }
    let section: number | undefined;
    const star = key.lastIndexOf("*");
    if (star > 0 && /^\d{1,4}$/.test(key.slice(star + 1))) {
      section = Number(key.slice(star + 1));
      key = key.slice(0, star);
    }
    if (key.length === 0) continue;
    let entry = collected.get(key);
    if (entry === undefined) {
      entry = { sections: new Map() };
      collected.set(key, entry);
    }
    const raw = { value, extended };
    if (section !== undefined) {
      if (!entry.sections.has(section)) entry.sections.set(section, raw);
    } else if (extended) {
      entry.single ??= raw;
    } else {
      entry.plain ??= raw;
    }
  }

  const result = new Map<string, string>();
  for (const [key, entry] of collected) {
    if (entry.sections.has(0)) {
      const parts: RawParameter[] = [];
      for (let i = 0; entry.sections.has(i); i++) parts.push(entry.sections.get(i)!);
      result.set(key, joinSections(parts));
    } else if (entry.single !== undefined) {
      result.set(key, joinSections([entry.single]));
    } else if (entry.plain !== undefined) {
      result.set(key, entry.plain.value);
    }
  }
  return result;
}

/** Decodes continuation sections; the first extended one may carry `charset'language'`. */
function joinSections(parts: readonly RawParameter[]): string {
  let charset: string | undefined;
  let out = "";
  let bytes: number[] = [];
  const flush = (): void => {
    if (bytes.length > 0) out += decodeWithFallback(Buffer.from(bytes), charset);
    bytes = [];
  };
  parts.forEach((part, index) => {
    if (!part.extended) {
      flush();
      out += part.value;
      return;
    }
    let text = part.value;
    if (index === 0) {
      const first = text.indexOf("'");
      const second = first === -1 ? -1 : text.indexOf("'", first + 1);
      if (second !== -1) {
        charset = text.slice(0, first) || undefined;
        text = text.slice(second + 1);
      }
    }
    pctDecodeInto(text, bytes);
  });
  flush();
  return out;
}

function decodeWithFallback(bytes: Buffer, charset: string | undefined): string {
  if (charset !== undefined) {
    try {
      return decodeText(bytes, normalizeCharset(charset));
    } catch {
      // An unknown charset: fall through to a guess.
    }
  }
  return isUtf8(bytes) ? bytes.toString("utf8") : bytes.toString("latin1");
}

function pctDecodeInto(text: string, out: number[]): void {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 && i + 2 < text.length && hexValue(text.charCodeAt(i + 1)) >= 0 && hexValue(text.charCodeAt(i + 2)) >= 0) {
      out.push((hexValue(text.charCodeAt(i + 1)) << 4) | hexValue(text.charCodeAt(i + 2)));
      i += 2;
    } else if (c < 0x80) {
      out.push(c);
    } else {
      out.push(...Buffer.from(text.slice(i, i + (c >= 0xd800 && c <= 0xdbff ? 2 : 1)), "utf8"));
      if (c >= 0xd800 && c <= 0xdbff) i++;
    }
  }
}

/** The content of a quoted string that starts `value`, unescaped; an unterminated one runs to the end. */
function unquote(value: string): string {
  let out = "";
  for (let i = 1; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === "\\" && i + 1 < value.length) {
      out += value[++i];
    } else if (ch === '"') {
      break;
    } else {
      out += ch;
    }
  }
  return out;
}

/** Splits at `;` outside quoted strings, dropping comments outside quoted strings. */
function splitItems(value: string): string[] {
  const items: string[] = [];
  let current = "";
  let inQuotes = false;
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (inQuotes) {
      current += ch;
      if (ch === "\\" && i + 1 < value.length) current += value[++i];
      else if (ch === '"') inQuotes = false;
    } else if (depth > 0) {
      if (ch === "\\") i++;
      else if (ch === "(") depth++;
      else if (ch === ")") depth--;
    } else if (ch === '"') {
      inQuotes = true;
      current += ch;
    } else if (ch === "(") {
      depth = 1;
    } else if (ch === ";") {
      items.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  items.push(current);
  return items;
}
