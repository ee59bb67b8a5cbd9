/**
 * Structured header fields read tolerantly: Content-Type and Content-Disposition with their
 * parameters (RFC 2045 §5, RFC 2183, RFC 2231), address lists (RFC 5322 §3.4), dates
 * (RFC 5322 §3.3 with the obsolete forms of §4.3) and message ids. A value that does not
 * parse gives a default and a defect, never an exception.
 */
import { parseAddressList, type Group, type Mailbox } from "../mime/address.js";
import { decodeWords } from "../mime/encoding/encoded-word.js";
import { parseParameters } from "../mime/encoding/rfc2231.js";
import type { DefectCode } from "./types.js";

type Report = (code: DefectCode, message: string) => void;

export interface ContentType {
  type: string;
  params: Record<string, string>;
}

function isTokenChar(c: number): boolean {
  // RFC 2045 §5.1 token: printable ASCII except SPACE and tspecials.
  return c > 0x20 && c < 0x7f && '()<>@,;:\\"/[]?='.indexOf(String.fromCharCode(c)) === -1;
}

function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) if (!isTokenChar(text.charCodeAt(i))) return false;
  return true;
}

/** The value before the first `;`, without comments and surrounding white space, lower case. */
function leadingValue(raw: string): string {
  let out = "";
  let depth = 0;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (depth > 0) {
      if (ch === "\\") i++;
      else if (ch === "(") depth++;
      else if (ch === ")") depth--;
      continue;
    }
    if (ch === "(") depth = 1;
    else if (ch === ";") break;
    else out += ch;
  }
  return out.trim().toLowerCase();
}

function paramsOf(raw: string): Record<string, string> {
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  const lower = raw.toLowerCase();
  for (const [key, value] of parseParameters(raw)) {
    // Encoded-words inside a plain value are not standard (RFC 2047 §5), but common enough
    // in filenames that every reader decodes them; an RFC 2231 value (`name*=`) is taken as it is.
    const extended = lower.includes(`${key}*`);
    params[key] = !extended && value.includes("=?") ? decodeWords(value) : value;
  }
  return params;
}

/**
 * Content-Type: `type/subtype` and its parameters. Absent or invalid, the default is
 * text/plain (RFC 2045 §5.2), or message/rfc822 inside multipart/digest (RFC 2046 §5.1.5).
 */
export function parseContentType(raw: string | undefined, defaultType: string, report: Report): ContentType {
  if (raw === undefined) return { type: defaultType, params: Object.create(null) as Record<string, string> };
  const value = leadingValue(raw);
  const slash = value.indexOf("/");
  const type = slash > 0 ? value.slice(0, slash).trim() : "";
  const subtype = slash > 0 ? value.slice(slash + 1).trim() : "";
  const params = paramsOf(raw);
  if (!isToken(type) || !isToken(subtype)) {
    report("invalid-content-type", `Content-Type ${JSON.stringify(raw.slice(0, 80))} is not type/subtype; read as ${defaultType}`);
    // RFC 2045 §5.2: an invalid Content-Type means text/plain; the charset may still be right.
    return { type: "text/plain", params };
  }
  return { type: `${type}/${subtype}`, params };
}

export interface Disposition {
  disposition: string | null;
  params: Record<string, string>;
}

export function parseDisposition(raw: string | undefined): Disposition {
  if (raw === undefined) return { disposition: null, params: Object.create(null) as Record<string, string> };
  const value = leadingValue(raw);
  return { disposition: isToken(value) ? value : null, params: paramsOf(raw) };
}

/** Content-ID / Message-ID without angle brackets and white space. */
export function bareId(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  let id = raw.trim();
  if (id.startsWith("<")) {
    const close = id.indexOf(">");
    id = close === -1 ? id.slice(1) : id.slice(1, close);
  }
  id = id.trim();
  return id === "" ? null : id;
}

/** Message-ID as written (with its angle brackets), trimmed. */
export function messageIdOf(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const id = raw.trim();
  return id === "" ? null : id;
}

function flatten(list: readonly (Mailbox | Group)[]): Mailbox[] {
  return list.flatMap((entry) => ("group" in entry ? entry.members : [entry]));
}

/** Splits an address list at commas outside quotes, comments and angle brackets. */
function splitAtCommas(value: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  let depth = 0;
  let angle = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted) {
      current += ch;
      if (ch === "\\" && i + 1 < value.length) current += value[++i];
      else if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === "(") depth++;
    else if (ch === ")" && depth > 0) depth--;
    else if (ch === "<" && depth === 0) angle = true;
    else if (ch === ">" && depth === 0) angle = false;
    else if (ch === "," && depth === 0 && !angle) {
      out.push(current);
      current = "";
      continue;
    }
    current += ch;
  }
  out.push(current);
  return out;
}

/**
 * The mailboxes of every field with an address header's name, groups flattened (their
 * members count, as in the SMTP envelope). A list that does not parse whole is read item
 * by item, keeping the items that do, and noted as a defect.
 */
export function parseAddresses(rawValues: readonly string[], name: string, report: Report): Mailbox[] {
  const out: Mailbox[] = [];
  for (const raw of rawValues) {
    // NUL and other line-ending characters cannot be in an unfolded value but a hostile one; drop them.
    const value = raw.replace(/[\0\r\n]/g, " ");
    try {
      out.push(...flatten(parseAddressList(value, name)));
      continue;
    } catch {
      // Fall through to the item-by-item reading.
    }
    let skipped = 0;
    for (const item of splitAtCommas(value)) {
      if (item.trim() === "") continue;
      try {
        out.push(...flatten(parseAddressList(item, name)));
      } catch {
        skipped++;
      }
    }
    report("invalid-address", `The ${name} header is not a valid address list${skipped > 0 ? `; ${skipped} item(s) could not be read` : ""}`);
  }
  return out;
}

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

/** RFC 5322 §4.3 obsolete zone names, in minutes east of UTC; military letters count as "-0000" (unknown). */
const ZONES: Record<string, number> = { ut: 0, gmt: 0, z: 0, est: -300, edt: -240, cst: -360, cdt: -300, mst: -420, mdt: -360, pst: -480, pdt: -420 };

/** Removes comments (`(...)`, nested) from a date value. */
function withoutComments(text: string): string {
  let out = "";
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "(") depth++;
    else if (ch === ")" && depth > 0) depth--;
    else if (ch === "\\" && depth > 0) i++;
    else if (depth === 0) out += ch;
  }
  return out;
}

/**
 * An RFC 5322 date-time (`[Day,] DD Mon YYYY HH:MM[:SS] zone`), with the obsolete forms:
 * two- and three-digit years (§4.3), zone names, missing seconds, extra white space and
 * comments. Null when it is not one.
 */
export function parseDate(raw: string): Date | null {
  const text = withoutComments(raw).replace(/,/g, " ").trim();
  if (text.length === 0 || text.length > 200) return null;
  let words = text.split(/[ \t]+/);
  // The day of the week is optional and says nothing the date does not (no weekday is spelled like a month).
  if (words[0] !== undefined && /^[a-z]+$/i.test(words[0]) && !(words[0].toLowerCase().slice(0, 3) in MONTHS)) words = words.slice(1);
  if (words.length < 4) return null;
  const [dayText, monthText, yearText, timeText, zoneText] = words as [string, string, string, string, string | undefined];
  if (!/^\d{1,2}$/.test(dayText) || !/^\d{2,4}$/.test(yearText)) return null;
  const month = MONTHS[monthText.toLowerCase().slice(0, 3)];
  if (month === undefined || monthText.length < 3) return null;
  let year = Number(yearText);
  // §4.3: a two-digit year is 19xx from 50 on, 20xx below; a three-digit one adds 1900.
  if (yearText.length === 2) year += year < 50 ? 2000 : 1900;
  else if (yearText.length === 3) year += 1900;
  const time = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(timeText);
  if (!time) return null;
  const [hours, minutes, seconds] = [Number(time[1]), Number(time[2]), Number(time[3] ?? 0)];
  const day = Number(dayText);
  if (day < 1 || day > 31 || hours > 23 || minutes > 59 || seconds > 60) return null;
  let offset = 0;
  if (zoneText !== undefined) {
    const numeric = /^([+-])(\d{2})(\d{2})$/.exec(zoneText);
    if (numeric) offset = (numeric[1] === "-" ? -1 : 1) * (Number(numeric[2]) * 60 + Number(numeric[3]));
    else offset = ZONES[zoneText.toLowerCase()] ?? 0;
  }
  const ms = Date.UTC(year, month, day, hours, minutes, Math.min(seconds, 59)) - offset * 60_000;
  const date = new Date(ms);
  // A day past the month's end (31 Feb) is not a date.
  if (new Date(Date.UTC(year, month, day)).getUTCDate() !== day) return null;
  return Number.isNaN(date.getTime()) ? null : date;
}
