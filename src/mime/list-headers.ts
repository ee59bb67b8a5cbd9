/**
 * The header fields bulk and automated mail carries, as typed, checked message options:
 *
 *   listId          → List-Id (RFC 2919)
 *   listUnsubscribe → List-Unsubscribe (RFC 2369 §3.2), and with `oneClick`
 *                     List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058 §3.1)
 *   listHelp        → List-Help (RFC 2369 §3.1)
 *   listArchive     → List-Archive (RFC 2369 §3.6)
 *   autoSubmitted   → Auto-Submitted (RFC 3834 §5)
 *   priority        → X-Priority, X-MSMail-Priority and Importance (RFC 2156 §5.3), together
 *
 * Every value is checked when it is set (`checkListOption`), so a bad URL is an error at
 * construction or assignment, never a header a provider silently ignores. What the checks
 * let through is ASCII that holds no white space, angle bracket or line break inside a URL,
 * so the rendered fields fold only between their parts and no value can add a header.
 */
import { BadHeaderError, InvalidAddressError, InvalidArgumentError } from "../errors.js";
import { envelopeAddress, formatPhraseParts } from "./address.js";
import { checkDomain } from "./domain.js";
import { assertHeaderValue, MAX_LINE_OCTETS } from "./headers.js";

/** A mailto: URI made for you: the address(es), and the subject and body of the mail a client sends. */
export interface MailtoFields {
  address: string | readonly string[];
  subject?: string | undefined;
  /** Line breaks become CRLF (%0D%0A), as RFC 6068 §5 asks. */
  body?: string | undefined;
}

export interface ListUnsubscribe {
  /** An `https:` URL (`http:` only without `oneClick`). */
  url?: string | undefined;
  /** A `mailto:` URI (RFC 6068), or its parts to make one from. */
  mailto?: string | MailtoFields | undefined;
  /** RFC 8058 one-click: adds `List-Unsubscribe-Post: List-Unsubscribe=One-Click`; needs an `https:` url. */
  oneClick?: boolean | undefined;
}

/** One URL, or several a client may choose from (the first it supports): `https:`, `http:` or `mailto:`. */
export type ListUrls = string | readonly string[];

export type Priority = "high" | "normal" | "low";

/** RFC 3834 §5: what sent the message, so that auto-responders do not answer it. */
export type AutoSubmitted = "auto-generated" | "auto-replied";

/** The bulk-mail options a message takes (and `sendMail`, and `missive send`). */
export interface ListOptions {
  /** `"Description <list.example.com>"` or `"<list.example.com>"` (RFC 2919). */
  listId?: string | undefined;
  listUnsubscribe?: ListUnsubscribe | undefined;
  listHelp?: ListUrls | undefined;
  listArchive?: ListUrls | undefined;
  autoSubmitted?: AutoSubmitted | undefined;
  /** "high" or "low" write X-Priority, X-MSMail-Priority and Importance; "normal" writes none. */
  priority?: Priority | undefined;
}

/** The options in the order their fields are written. */
export const LIST_OPTION_NAMES = ["listId", "listUnsubscribe", "listHelp", "listArchive", "autoSubmitted", "priority"] as const;
export type ListOptionName = (typeof LIST_OPTION_NAMES)[number];

/**
 * The header names each option owns, whether or not it writes them all (`priority: "normal"`
 * writes none, a listUnsubscribe without oneClick no List-Unsubscribe-Post): given through
 * `headers` as well, which of the two was meant cannot be known, so that is refused.
 */
export const LIST_OPTION_HEADERS: Readonly<Record<ListOptionName, readonly string[]>> = Object.freeze({
  listId: ["List-Id"],
  listUnsubscribe: ["List-Unsubscribe", "List-Unsubscribe-Post"],
  listHelp: ["List-Help"],
  listArchive: ["List-Archive"],
  autoSubmitted: ["Auto-Submitted"],
  priority: ["X-Priority", "X-MSMail-Priority", "Importance"],
});

/** The longest URL: `List-Unsubscribe: <URL>,` must fit in one line of 998 octets (a URL cannot be folded). */
export const MAX_URL_LENGTH = MAX_LINE_OCTETS - "List-Unsubscribe: <>,".length;
/** RFC 2919 §2: a list-id is at most 255 octets. */
const MAX_LIST_ID = 255;

const UNSUBSCRIBE_KEYS = new Set(["url", "mailto", "oneClick"]);
const MAILTO_KEYS = new Set(["address", "subject", "body"]);

// ---------------------------------------------------------------------------------------
// Character classes

function table(chars: string, alnum = true): Uint8Array {
  const t = new Uint8Array(128);
  if (alnum) for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") t[ch.charCodeAt(0)] = 1;
  for (const ch of chars) t[ch.charCodeAt(0)] = 1;
  return t;
}

/** RFC 3986 §2: unreserved, reserved and "%" (checked to start a percent-encoding). */
const URI_CHARS = table("-._~:/?#[]@!$&'()*+,;=%");
/** RFC 6068 §2 qchar without pct-encoded: unreserved and some-delims. */
const QCHAR = table("-._~!$'()*+,;:@");
/** An hfvalue also takes "/" and "?", which RFC 3986 §3.4 allows in a query. */
const HFVALUE = table("-._~!$'()*+,;:@/?");
/** RFC 5322 §3.2.3 atext. */
const ATEXT = table("!#$%&'*+-/=?^_`{|}~");

function show(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

function describe(ch: string): string {
  const c = ch.charCodeAt(0);
  if (c === 0x0d) return "a carriage return (CR)";
  if (c === 0x0a) return "a line feed (LF)";
  if (c === 0x00) return "a NUL character";
  if (c === 0x20) return "a space";
  if (c === 0x09) return "a tab";
  if (c < 0x20 || c === 0x7f) return `the control character U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
  return JSON.stringify(ch);
}

/**
 * A URL as RFC 2369 §2 puts it in angle brackets: RFC 3986 characters only, every "%"
 * starting a percent-encoding. White space, angle brackets and line breaks are refused
 * rather than encoded: they mean the URL was not built as a URL (a raw template, a value
 * pasted with its neighbours), and encoding them would hide the mistake.
 */
function checkUriChars(uri: string, field: string): void {
  if (uri.length === 0) throw new BadHeaderError(field, `${field}: the URL is empty`);
  if (uri.length > MAX_URL_LENGTH) throw new BadHeaderError(field, `${field}: the URL is ${uri.length} characters; at most ${MAX_URL_LENGTH} fit on one header line (998 octets, RFC 5322 §2.1.1)`);
  for (let i = 0; i < uri.length; i++) {
    const ch = uri[i]!;
    const c = uri.charCodeAt(i);
    if (c === 0x0d || c === 0x0a || c === 0x00) {
      throw new BadHeaderError(field, `${field}: the URL contains ${describe(ch)} at offset ${i}; header values must be a single line (header injection)`);
    }
    if (c === 0x3c || c === 0x3e) {
      throw new BadHeaderError(field, `${field}: the URL ${show(uri)} contains ${describe(ch)} at offset ${i}; angle brackets enclose the URL in the header (RFC 2369 §2), so they cannot be inside it`);
    }
    if (c > 0x7e || URI_CHARS[c] !== 1) {
      const hint = c > 0x7f ? "percent-encode it as UTF-8 (new URL(text).href does so for http and https)" : "percent-encode it (RFC 3986 §2.1)";
      throw new BadHeaderError(field, `${field}: the URL ${show(uri)} contains ${describe(ch)} at offset ${i}, which a URL cannot hold; ${hint}`);
    }
    if (c === 0x25 && !/^[0-9A-Fa-f]{2}$/.test(uri.slice(i + 1, i + 3))) {
      throw new BadHeaderError(field, `${field}: the URL ${show(uri)} has a "%" at offset ${i} that does not start a percent-encoding (%XX); write a literal "%" as %25`);
    }
  }
}

/** An http: or https: URL with a host. */
function checkWebUrl(url: string, field: string): void {
  if (!/^https?:\/\/[^/?#]/i.test(url) || !URL.canParse(url) || new URL(url).hostname === "") {
    throw new BadHeaderError(field, `${field}: ${show(url)} is not an http: or https: URL with a host (https://example.com/...)`);
  }
}

function percentDecode(text: string, field: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new BadHeaderError(field, `${field}: the ${what} ${show(text)} does not percent-decode to UTF-8 text`);
  }
}

function checkChars(text: string, allowed: Uint8Array, field: string, what: string, uri: string): void {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 || (c < 0x80 && allowed[c] === 1)) continue;
    throw new BadHeaderError(field, `${field}: in ${show(uri)}, the ${what} holds ${describe(text[i]!)}, which must be percent-encoded there (RFC 6068 §2)`);
  }
}

function checkMailtoAddresses(encoded: string, field: string, uri: string, what: string): void {
  const decoded = percentDecode(encoded, field, what);
  for (const address of decoded.split(",")) {
    try {
      // Strict addr-spec (RFC 6068 §2): no display name, comment or white space.
      envelopeAddress(address, { smtputf8: true });
    } catch (err) {
      if (!(err instanceof InvalidAddressError)) throw err;
      throw new BadHeaderError(field, `${field}: in ${show(uri)}, ${show(address)} is not a bare address (local@domain): ${err.message}`);
    }
  }
}

/**
 * RFC 6068 §2: `mailto:addr[,addr]?name=value&name=value`. The addresses are checked as
 * bare addresses, every header field after "?" must be `name=value` with the characters
 * that need it percent-encoded ("=", "&", "#", space), and what the values decode to must be
 * UTF-8 without CR, LF or NUL (the mail a client sends from it would get an extra header),
 * except in `body`, where line breaks are CRLF pairs (RFC 6068 §5).
 */
function checkMailto(uri: string, field: string): void {
  const rest = uri.slice("mailto:".length);
  const q = rest.indexOf("?");
  const to = q < 0 ? rest : rest.slice(0, q);
  if (to === "") throw new BadHeaderError(field, `${field}: ${show(uri)} has no address after "mailto:"`);
  checkChars(to, QCHAR, field, "address", uri);
  checkMailtoAddresses(to, field, uri, "address");
  if (q < 0) return;
  for (const hfield of rest.slice(q + 1).split("&")) {
    const eq = hfield.indexOf("=");
    if (eq <= 0) throw new BadHeaderError(field, `${field}: in ${show(uri)}, each field after "?" must be name=value (RFC 6068 §2), not ${show(hfield)}`);
    const name = hfield.slice(0, eq);
    const value = hfield.slice(eq + 1);
    checkChars(name, QCHAR, field, "field name", uri);
    checkChars(value, HFVALUE, field, `${show(name)} field`, uri);
    const decodedName = percentDecode(name, field, "field name").toLowerCase();
    if (!/^[a-z0-9-]+$/.test(decodedName)) throw new BadHeaderError(field, `${field}: in ${show(uri)}, ${show(name)} is not a header field name`);
    const decoded = percentDecode(value, field, `${decodedName} field`);
    if (decodedName === "to" || decodedName === "cc" || decodedName === "bcc") {
      if (value !== "") checkMailtoAddresses(value, field, uri, `${decodedName} field`);
      continue;
    }
    const breaks = decodedName === "body" ? decoded.replace(/\r\n/g, "") : decoded;
    const bad = breaks.search(/[\r\n\0]/);
    if (bad >= 0) {
      const where = decodedName === "body" ? "a CR or LF that is not part of a CRLF pair, or a NUL (RFC 6068 §5)" : "a CR, LF or NUL once decoded (the mail sent from it would get an extra header)";
      throw new BadHeaderError(field, `${field}: in ${show(uri)}, the ${decodedName} field holds ${where}`);
    }
  }
}

/** Percent-encodes everything outside `keep` (UTF-8). */
function percentEncode(text: string, keep: Uint8Array): string {
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80 && keep[c] === 1) out += ch;
    else for (const b of Buffer.from(ch, "utf8")) out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The local part kept as written where RFC 6068 allows it; "," separates addresses, so it is encoded. */
const MAILTO_LOCAL = table("-._~!$'()*+;:");
/**
 * What a subject or body we encode keeps as written: qchar without "+", which parsers of
 * HTML-form queries (Python's parse_qs, many mail clients) read as a space.
 */
const MAILTO_VALUE = table("-._~!$'()*,;:@");

/** Builds the mailto: URI for `MailtoFields`; the result is then checked like any given URI. */
function mailtoFrom(fields: MailtoFields, field: string): string {
  if (typeof fields !== "object" || fields === null) throw new InvalidArgumentError(`${field}: mailto must be a "mailto:" URI or { address, subject?, body? }`);
  for (const key of Object.keys(fields)) {
    if (!MAILTO_KEYS.has(key)) throw new InvalidArgumentError(`${field}: mailto takes address, subject and body, not ${show(key)}`);
  }
  const { address, subject, body } = fields;
  const list: readonly unknown[] = Array.isArray(address) ? address : [address];
  if (list.length === 0) throw new InvalidArgumentError(`${field}: mailto needs an address`);
  const addresses = list.map((a) => {
    if (typeof a !== "string") throw new InvalidArgumentError(`${field}: a mailto address must be a string`);
    assertHeaderValue(field, a);
    const at = a.lastIndexOf("@");
    if (at <= 0) throw new BadHeaderError(field, `${field}: ${show(a)} is not an address (local@domain)`);
    const { ascii, problem } = a.slice(at + 1).startsWith("[") ? { ascii: a.slice(at + 1), problem: undefined } : checkDomain(a.slice(at + 1));
    if (problem !== undefined) throw new BadHeaderError(field, `${field}: ${show(a)} is not an address: ${problem}`);
    return `${percentEncode(a.slice(0, at), MAILTO_LOCAL)}@${ascii}`;
  });
  const hfields: string[] = [];
  if (subject !== undefined) {
    if (typeof subject !== "string") throw new InvalidArgumentError(`${field}: the mailto subject must be a string`);
    assertHeaderValue(`${field} subject`, subject);
    hfields.push(`subject=${percentEncode(subject, MAILTO_VALUE)}`);
  }
  if (body !== undefined) {
    if (typeof body !== "string") throw new InvalidArgumentError(`${field}: the mailto body must be a string`);
    if (!body.isWellFormed()) throw new InvalidArgumentError(`${field}: the mailto body has a lone surrogate`);
    hfields.push(`body=${percentEncode(body.replace(/\r\n|\r|\n/g, "\r\n"), MAILTO_VALUE)}`);
  }
  return `mailto:${addresses.join(",")}${hfields.length > 0 ? `?${hfields.join("&")}` : ""}`;
}

/** One URL of a List-* field: http:, https: or mailto:, checked. */
function checkListUrl(url: unknown, field: string): string {
  if (typeof url !== "string") throw new InvalidArgumentError(`${field}: a URL must be a string, got ${url === null ? "null" : typeof url}`);
  checkUriChars(url, field);
  if (/^mailto:/i.test(url)) checkMailto(url, field);
  else if (/^https?:/i.test(url)) checkWebUrl(url, field);
  else throw new BadHeaderError(field, `${field}: ${show(url)} is not an https:, http: or mailto: URL`);
  return url;
}

// ---------------------------------------------------------------------------------------
// The options

/** The listUnsubscribe option, checked; a frozen copy (mailto given as parts is kept as the URI made from them). */
function checkListUnsubscribe(value: ListUnsubscribe): Readonly<ListUnsubscribe> {
  const field = "List-Unsubscribe";
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidArgumentError("listUnsubscribe must be an object: { url?, mailto?, oneClick? }");
  for (const key of Object.keys(value)) {
    if (!UNSUBSCRIBE_KEYS.has(key)) throw new InvalidArgumentError(`listUnsubscribe takes url, mailto and oneClick, not ${show(key)}`);
  }
  const { url, oneClick } = value;
  const mailto = typeof value.mailto === "object" && value.mailto !== null ? mailtoFrom(value.mailto, field) : value.mailto;
  if (url === undefined && mailto === undefined) throw new InvalidArgumentError("listUnsubscribe needs a url, a mailto, or both (RFC 2369 §3.2)");
  if (oneClick !== undefined && typeof oneClick !== "boolean") throw new InvalidArgumentError("listUnsubscribe.oneClick must be true or false");
  if (url !== undefined) {
    checkListUrl(url, field);
    if (!/^https?:/i.test(url)) throw new BadHeaderError(field, `listUnsubscribe.url must be an https: URL, not ${show(url)}; a mailto: URI goes in listUnsubscribe.mailto`);
  }
  if (mailto !== undefined) {
    checkListUrl(mailto, field);
    if (!/^mailto:/i.test(mailto)) throw new BadHeaderError(field, `listUnsubscribe.mailto must be a mailto: URI, not ${show(mailto)}; a web address goes in listUnsubscribe.url`);
  }
  if (oneClick === true && (url === undefined || !/^https:/i.test(url))) {
    // RFC 8058 §3.1: the field must hold one HTTPS URI, which receives the POST.
    const given = url === undefined ? "there is no url" : `${show(url)} is not https:`;
    throw new BadHeaderError("List-Unsubscribe-Post", `One-click unsubscribe (RFC 8058) needs an https: URL in listUnsubscribe.url, and ${given}`);
  }
  return Object.freeze({ ...(url !== undefined ? { url } : {}), ...(mailto !== undefined ? { mailto } : {}), ...(oneClick !== undefined ? { oneClick } : {}) });
}

function checkListUrls(value: ListUrls, option: string, field: string): string | readonly string[] {
  if (typeof value === "string") return checkListUrl(value, field);
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${option} must be a URL or a list of URLs`);
  if (value.length === 0) throw new InvalidArgumentError(`${option} must hold at least one URL (leave it undefined for none)`);
  return Object.freeze(value.map((url: unknown) => checkListUrl(url, field)));
}

/** RFC 2919 §2: `[phrase] "<" list-label "." namespace ">"`, the id a dot-atom of at most 255 octets. */
function parseListId(value: string): { phrase: string; id: string } {
  const field = "List-Id";
  assertHeaderValue(field, value);
  const text = value.trim();
  const open = text.lastIndexOf("<");
  if (open < 0 || !text.endsWith(">")) {
    throw new BadHeaderError(field, `listId must be "Description <list.example.com>" or "<list.example.com>" (RFC 2919), not ${show(value)}`);
  }
  const id = text.slice(open + 1, -1);
  const atoms = id.split(".");
  const atext = (atom: string) => atom.length > 0 && [...atom].every((ch) => ch.charCodeAt(0) < 0x80 && ATEXT[ch.charCodeAt(0)] === 1);
  if (atoms.length < 2 || !atoms.every(atext)) {
    throw new BadHeaderError(field, `listId: ${show(id)} is not a list identifier: it must be ASCII dot-atom text with at least one dot, a label then a domain you control (RFC 2919 §2), e.g. "<news.example.com>"`);
  }
  if (id.length > MAX_LIST_ID) throw new BadHeaderError(field, `listId: the identifier is ${id.length} octets, longer than ${MAX_LIST_ID} (RFC 2919 §2)`);
  let phrase = text.slice(0, open).trim();
  // A description written as one quoted string is its content; anything else is the text itself.
  if (/^"(?:[^"\\]|\\.)*"$/s.test(phrase)) phrase = phrase.slice(1, -1).replace(/\\(.)/gs, "$1");
  return { phrase, id };
}

/** The List-Id field value, ASCII: the description as atoms, a quoted string or encoded-words (RFC 2047 §5(3)). */
function listIdValue(value: string, charset: string): string {
  const { phrase, id } = parseListId(value);
  if (phrase === "") return `<${id}>`;
  const firstLineRoom = 76 - "List-Id: ".length;
  const pieces = formatPhraseParts(phrase, { utf8: false, charset, encodedWordLength: 75, leadEncodedWordLength: firstLineRoom });
  return `${pieces.join(" ")} <${id}>`;
}

function checkPriority(value: Priority): Priority {
  if (value !== "high" && value !== "normal" && value !== "low") throw new InvalidArgumentError(`priority must be "high", "normal" or "low", not ${show(String(value))}`);
  return value;
}

function checkAutoSubmitted(value: AutoSubmitted): AutoSubmitted {
  if (value !== "auto-generated" && value !== "auto-replied") {
    throw new InvalidArgumentError(`autoSubmitted must be "auto-generated" or "auto-replied" (RFC 3834 §5), not ${show(String(value))}`);
  }
  return value;
}

/**
 * Checks one option's value and returns what the message keeps: the value itself for
 * strings, a frozen copy for objects and lists; `undefined` clears the option.
 *
 * @throws InvalidArgumentError for a value of the wrong shape (unknown keys, neither url nor mailto, not a priority).
 * @throws BadHeaderError naming the field for what would be a bad header: a URL with white
 *   space, angle brackets, CR/LF or characters a URL cannot hold, `oneClick` without an
 *   https: url, a malformed mailto:, a List-Id that is not `phrase <id>` or `<id>`.
 */
export function checkListOption<K extends ListOptionName>(name: K, value: ListOptions[K]): ListOptions[K] {
  if (value === undefined) return undefined;
  switch (name) {
    case "listId":
      if (typeof value !== "string") throw new InvalidArgumentError("listId must be a string");
      listIdValue(value, "utf-8");
      return value;
    case "listUnsubscribe":
      return checkListUnsubscribe(value as ListUnsubscribe) as ListOptions[K];
    case "listHelp":
      return checkListUrls(value as ListUrls, "listHelp", "List-Help") as ListOptions[K];
    case "listArchive":
      return checkListUrls(value as ListUrls, "listArchive", "List-Archive") as ListOptions[K];
    case "autoSubmitted":
      return checkAutoSubmitted(value as AutoSubmitted) as ListOptions[K];
    case "priority":
      return checkPriority(value as Priority) as ListOptions[K];
    default:
      throw new InvalidArgumentError(`Unknown message option ${show(String(name))}`);
  }
}

/**
 * Refuses a header given through `headers` that an option in use owns: `listId` and a raw
 * `List-Id` (any case) cannot both be given, as a header name may be given only once.
 */
export function assertListHeadersFree(options: ListOptions, headerNames: Iterable<string>): void {
  const given = new Map<string, string>();
  for (const name of headerNames) given.set(name.toLowerCase(), name);
  for (const option of LIST_OPTION_NAMES) {
    if (options[option] === undefined) continue;
    for (const owned of LIST_OPTION_HEADERS[option]) {
      const name = given.get(owned.toLowerCase());
      if (name !== undefined) {
        throw new BadHeaderError(name, `${name} is written by the ${option} option, and headers has it too; give it once, through ${option} (checked) or through headers`);
      }
    }
  }
}

const PRIORITY_FIELDS: Readonly<Record<Exclude<Priority, "normal">, readonly (readonly [string, string])[]>> = {
  // X-Priority 1-5 and X-MSMail-Priority are what Outlook and most clients read; Importance
  // is RFC 2156 §5.3's (low / normal / high). Normal is the default for all three, so it is not written.
  high: [["X-Priority", "1 (Highest)"], ["X-MSMail-Priority", "High"], ["Importance", "high"]],
  low: [["X-Priority", "5 (Lowest)"], ["X-MSMail-Priority", "Low"], ["Importance", "low"]],
};

/**
 * The fields of the options that are set, in the order of LIST_OPTION_NAMES, as
 * `[name, value]` with values that are ASCII and already formatted (the renderer folds
 * them at their spaces). `charset` is for encoded-words in a List-Id description.
 */
export function listHeaderFields(options: ListOptions, charset: string): [string, string][] {
  const fields: [string, string][] = [];
  const urls = (value: ListUrls) => (typeof value === "string" ? [value] : value).map((u) => `<${u}>`).join(", ");
  if (options.listId !== undefined) fields.push(["List-Id", listIdValue(options.listId, charset)]);
  const unsubscribe = options.listUnsubscribe;
  if (unsubscribe !== undefined) {
    // RFC 2369 §2: a client uses the leftmost URL it supports; the https one goes first.
    const list = [unsubscribe.url, unsubscribe.mailto as string | undefined].filter((u): u is string => u !== undefined);
    fields.push(["List-Unsubscribe", urls(list)]);
    if (unsubscribe.oneClick === true) fields.push(["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"]);
  }
  if (options.listHelp !== undefined) fields.push(["List-Help", urls(options.listHelp)]);
  if (options.listArchive !== undefined) fields.push(["List-Archive", urls(options.listArchive)]);
  if (options.autoSubmitted !== undefined) fields.push(["Auto-Submitted", options.autoSubmitted]);
  if (options.priority !== undefined && options.priority !== "normal") for (const [name, value] of PRIORITY_FIELDS[options.priority]) fields.push([name, value]);
  return fields;
}

/** The list options present (own, defined) in `source`: for passing them on (sendMail, the CLI). */
export function pickListOptions(source: ListOptions): ListOptions {
  const out: Record<string, unknown> = {};
  for (const name of LIST_OPTION_NAMES) if (Object.hasOwn(source, name) && source[name] !== undefined) out[name] = source[name];
  return out as ListOptions;
}
