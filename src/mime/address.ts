/**
 * Email addresses written: a mailbox or group as pieces of a header (RFC 5322 §3.4, display
 * names as atoms, a quoted string or RFC 2047 encoded-words, domains in IDNA (RFC 5890)
 * unless the header may hold UTF-8 (RFC 6532)), the address of an SMTP command (RFC 5321,
 * RFC 6531), and what makes two addresses one recipient. Reading addresses is
 * address-parse.ts; its functions are exported from here too, so that callers import
 * addresses from one place.
 */
import { BadHeaderError, EncodingError, InvalidAddressError } from "../errors.js";
import { assertWellFormed, normalizeCharset } from "./encoding/charset.js";
import { encodeWords } from "./encoding/encoded-word.js";
import { quoteString } from "./encoding/rfc2231.js";
import { checkDomain } from "./domain.js";
import {
  checkString,
  describeChar,
  fail,
  findLineBreakOrNul,
  isAscii,
  isAtomChar,
  isControl,
  keptSpec,
  parseAddrSpec,
  renderLocal,
  show,
  validateMailbox,
  type AddrSpec,
  type Group,
  type Mailbox,
} from "./address-parse.js";

export { canonicalEntries, isAscii, normalizeAddresses, parseAddressEntries, parseAddressList, parseMailbox, type AddressInput, type Group, type Mailbox } from "./address-parse.js";

export interface FormatOptions {
  /** RFC 6532: raw UTF-8 allowed in the header (the server offered SMTPUTF8). */
  utf8: boolean;
  /** Charset for RFC 2047 encoded-words in display names. */
  charset: string;
  /** Longest encoded-word for display and group names; at most 75 (RFC 2047 §2), the default. */
  encodedWordLength?: number;
  /**
   * Longest first encoded-word of the leading name (the mailbox's display name, or the
   * group's name, not its members'), when it comes first: the header renderer shortens it so
   * that it fits on the header's first line after `Name: `. Defaults to `encodedWordLength`.
   */
  leadEncodedWordLength?: number;
}


/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets. */
const MAX_ENVELOPE_ADDRESS = 254;
/** Longest piece formatAddress hands to the header folder (a line may hold 998 octets). */
const MAX_PIECE = 900;

// ---------------------------------------------------------------------------------------
// Formatting

function toAsciiDomain(domain: string, address: string): string {
  if (domain.startsWith("[") || isAscii(domain)) return domain;
  const { ascii, problem } = checkDomain(domain);
  if (problem !== undefined) throw new InvalidAddressError(address, `Invalid address ${show(address)}: ${problem}`);
  return ascii;
}

function smtpUtf8Error(address: string, where: string): InvalidAddressError {
  return new InvalidAddressError(
    address,
    `The address ${show(address)} has a non-ASCII local part, so ${where} needs SMTPUTF8 (RFC 6531/6532); ` +
      "send through a server that offers SMTPUTF8 or use an ASCII address",
  );
}

/** RFC 2047 words for `text`; characters the charset cannot hold fall back to UTF-8. */
export function encodeWordsWithFallback(text: string, charset: string, context: "text" | "phrase" | "comment", maxLength?: number, firstMaxLength?: number): string[] {
  const cs = normalizeCharset(charset);
  if (cs === "utf-8") return encodeWords(text, { charset: cs, context, maxLength, firstMaxLength });
  try {
    return encodeWords(text, { charset: cs, context, maxLength, firstMaxLength });
  } catch (err) {
    if (!(err instanceof EncodingError)) throw err;
    return encodeWords(text, { charset: "utf-8", context, maxLength, firstMaxLength });
  }
}

/** Characters a display name cannot carry raw: controls (tab included), or non-ASCII without utf8. */
function nameNeedsEncoding(name: string, utf8: boolean): boolean {
  if (name.includes("=?")) return true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x09 || isControl(c) || c === 0x2028 || c === 0x2029) return true;
    if (c > 0x7f && !utf8) return true;
  }
  return false;
}

/** Atoms separated by single spaces: can go out unquoted. */
function isPlainPhrase(name: string): boolean {
  let prevSpace = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x20) {
      if (prevSpace) return false;
      prevSpace = true;
    } else {
      if (!isAtomChar(c)) return false;
      prevSpace = false;
    }
  }
  return !prevSpace;
}

/**
 * Encoded-words for text in a phrase. Text that fits in one encoded-word stays one, even
 * when that leaves no room for it on the header's first line (it then goes on the next):
 * split in two, it would read back with a space inside in readers that mishandle adjacent
 * encoded-words in a phrase. Longer text is split anyway, and then the first word is
 * shortened to the room on the first line.
 */
function phraseWords(text: string, opts: FormatOptions, first: boolean): string[] {
  const whole = encodeWordsWithFallback(text, opts.charset, "phrase", opts.encodedWordLength);
  if (!first || whole.length === 1) return whole;
  return encodeWordsWithFallback(text, opts.charset, "phrase", opts.encodedWordLength, opts.leadEncodedWordLength);
}

/** Plain text of a phrase as atoms (when it is atoms separated by single spaces) or one quoted string. */
function plainPieces(text: string): string[] | undefined {
  const pieces = isPlainPhrase(text) ? text.split(" ") : [quoteString(text)];
  return pieces.every((p) => Buffer.byteLength(p) <= MAX_PIECE) ? pieces : undefined;
}

/**
 * A display name that needs encoding, with only the words that need it encoded (RFC 2047
 * §5(3) lets a phrase mix encoded-words with atoms and quoted strings): each run of such
 * words becomes encoded-words, the words between stay atoms or become one quoted string.
 *
 * White space is placed so that the name reads back exactly, also in readers that take
 * white space inside a phrase's encoded-word as folding white space (CPython's, which
 * turns each run of it into one space): inside an encoded run only single spaces between
 * words; one space between pieces; any more, and white space at either end of the name,
 * in a quoted string — the neighbouring plain words', or one of spaces alone (`""` for
 * none) between two encoded runs. Short of a run too long for one encoded-word, no two
 * encoded-words are then adjacent, which readers that put a space between adjacent ones
 * (CPython's before gh-128110) also read back exactly.
 */
function mixedPhrasePieces(name: string, opts: FormatOptions, lead: boolean): string[] | undefined {
  const words = name.split(" ");
  const leading = words.findIndex((w) => w !== "");
  if (leading < 0) return undefined;
  let trailing = 0;
  while (words[words.length - 1 - trailing] === "") trailing++;
  // Each item: encoded text, plain text (atoms or quoted), or spaces alone (always quoted).
  const items: { kind: "encoded" | "plain" | "spaces"; text: string }[] = [];
  let gap = leading; // spaces before the next word
  for (let k = leading; k < words.length - trailing; k++) {
    const word = words[k] as string;
    if (word === "") {
      gap++;
      continue;
    }
    const kind = nameNeedsEncoding(word, opts.utf8) ? "encoded" : "plain";
    const last = items[items.length - 1];
    const atStart = last === undefined;
    const sameRun = last !== undefined && last.kind === kind && (kind === "plain" || gap === 1);
    if (sameRun) {
      last.text += " ".repeat(gap) + word;
    } else if (kind === "plain") {
      // Extra spaces before plain words travel in their quoted string.
      items.push({ kind, text: " ".repeat(atStart ? gap : gap - 1) + word });
    } else if (last !== undefined && last.kind === "plain") {
      last.text += " ".repeat(gap - 1);
      items.push({ kind, text: word });
    } else {
      if (atStart ? gap > 0 : gap > 1) items.push({ kind: "spaces", text: " ".repeat(atStart ? gap - 1 : gap - 2) });
      items.push({ kind, text: word });
    }
    gap = 1;
  }
  if (trailing > 0) {
    const last = items[items.length - 1] as { kind: string; text: string };
    if (last.kind === "plain") last.text += " ".repeat(trailing);
    else items.push({ kind: "spaces", text: " ".repeat(trailing - 1) });
  }
  const pieces: string[] = [];
  for (const item of items) {
    if (item.kind === "encoded") {
      pieces.push(...phraseWords(item.text, opts, pieces.length === 0 && lead));
    } else {
      const plain = item.kind === "plain" ? plainPieces(item.text) : [quoteString(item.text)];
      if (plain === undefined) return undefined;
      pieces.push(...plain);
    }
  }
  return pieces;
}

/** The display name as pieces the header folder may separate with white space. */
function phrasePieces(name: string, opts: FormatOptions, lead: boolean): string[] {
  if (!nameNeedsEncoding(name, opts.utf8)) {
    const plain = plainPieces(name);
    if (plain !== undefined) return plain;
    return phraseWords(name, opts, lead);
  }
  // Encoding a name costs far more than finding it here, and a bulk send writes the same
  // From name into every message: the last few encoded names are kept (as copies handed out).
  const key = `${opts.utf8}\0${opts.charset}\0${opts.encodedWordLength}\0${opts.leadEncodedWordLength}\0${lead}\0${name}`;
  const known = ENCODED_NAMES.get(key);
  if (known !== undefined) return [...known];
  const pieces = mixedPhrasePieces(name, opts, lead) ?? phraseWords(name, opts, lead);
  if (ENCODED_NAMES.size >= 64) ENCODED_NAMES.delete(ENCODED_NAMES.keys().next().value as string);
  ENCODED_NAMES.set(key, [...pieces]);
  return pieces;
}

/** Display names that needed encoding, as pieces, by the name and the options they were encoded with. */
const ENCODED_NAMES = new Map<string, readonly string[]>();

/**
 * A phrase that is not a display name (a List-Id's description) formatted as a display name
 * is: atoms, a quoted string, or encoded-words where needed, as pieces the header folder
 * may separate with white space. `text` must be a non-empty single line.
 */
export function formatPhraseParts(text: string, opts: FormatOptions): string[] {
  return phrasePieces(text, opts, true);
}

/** The addr-spec as it goes into a header. */
function wireAddrSpec(address: string, utf8: boolean, spec: AddrSpec = parseAddrSpec(address.trim(), false)): string {
  if (!utf8 && !isAscii(spec.local)) throw smtpUtf8Error(address, "a header holding it");
  let domain = spec.domain;
  if (!utf8) domain = toAsciiDomain(domain, address);
  else if (!domain.startsWith("[") && !isAscii(domain)) toAsciiDomain(domain, address);
  return `${renderLocal(spec.local)}@${domain}`;
}

/**
 * `formatAddress` split where the header folder may break the line: the display name's
 * words (or encoded-words), then `<local@domain>`. A bare address is one piece.
 */
export function formatAddressParts(m: Mailbox, opts: FormatOptions): string[] {
  const mailbox = validateMailbox(m, "address");
  const spec = wireAddrSpec(mailbox.address, opts.utf8, keptSpec(mailbox));
  if (Buffer.byteLength(spec) > MAX_PIECE) throw new InvalidAddressError(mailbox.address, `Invalid address ${show(mailbox.address)}: too long for a header`);
  if (mailbox.name === "") return [spec];
  return [...phrasePieces(mailbox.name, opts, true), `<${spec}>`];
}

/**
 * A group for a header, as pieces the folder may separate with white space:
 * `Name: a@x.org, b@y.org;` (`Name:;` when empty), members formatted as `formatAddressParts`.
 */
export function formatGroupParts(g: Group, opts: FormatOptions): string[] {
  checkString(g.group, "group name");
  const bad = findLineBreakOrNul(g.group);
  if (bad >= 0) throw new BadHeaderError("group", `The group name contains ${describeChar(g.group.charCodeAt(bad))} at offset ${bad}`);
  assertWellFormed(g.group, "group name");
  const parts = g.group === "" ? [""] : phrasePieces(g.group, opts, true);
  const last = parts[parts.length - 1] as string;
  // An encoded-word needs white space after it (Python flags ":" right after "?=").
  if (last.startsWith("=?") && last.endsWith("?=")) parts.push(":");
  else parts[parts.length - 1] = `${last}:`;
  const memberOpts = { ...opts, leadEncodedWordLength: undefined };
  g.members.forEach((m, i) => {
    const member = formatAddressParts(m, memberOpts);
    if (i < g.members.length - 1) member[member.length - 1] += ",";
    parts.push(...member);
  });
  parts[parts.length - 1] += ";";
  return parts;
}

/**
 * One mailbox for a header, unfolded: `Name <local@domain>`, the name quoted or made of
 * RFC 2047 encoded-words as needed, the domain in IDNA form unless `utf8`.
 *
 * @throws InvalidAddressError when the local part is non-ASCII and `utf8` is false.
 */
export function formatAddress(m: Mailbox, opts: FormatOptions): string {
  return formatAddressParts(m, opts).join(" ");
}

/**
 * The address for `MAIL FROM:<...>` / `RCPT TO:<...>` (without the brackets): validated
 * (no white space, comments, angle brackets, CR, LF or NUL; at most 254 octets), the domain
 * in IDNA form unless `smtputf8`.
 *
 * @throws InvalidAddressError, also when the local part is non-ASCII and `smtputf8` is false.
 */
export function envelopeAddress(address: string, opts: { smtputf8: boolean }): string {
  checkString(address, "envelope address");
  const bad = findLineBreakOrNul(address);
  if (bad >= 0) fail(address, `${describeChar(address.charCodeAt(bad))} at offset ${bad}`);
  assertWellFormed(address, "envelope address");
  return envelopeForm(parseAddrSpec(address, true), address, opts);
}

/**
 * `envelopeAddress(m.address, opts)` for a mailbox: a kept one (`canonicalEntries`) is not
 * parsed again, since its address is the canonical form of its addr-spec, which has no white
 * space or comment outside quotes (the strict parse would give the same addr-spec).
 */
export function mailboxEnvelopeAddress(m: Mailbox, opts: { smtputf8: boolean }): string {
  const spec = keptSpec(m);
  return spec === undefined ? envelopeAddress(m.address, opts) : envelopeForm(spec, m.address, opts);
}

function envelopeForm(spec: AddrSpec, address: string, opts: { smtputf8: boolean }): string {
  if (!opts.smtputf8 && !isAscii(spec.local)) throw smtpUtf8Error(address, "the SMTP envelope");
  const domain = opts.smtputf8 ? spec.domain : toAsciiDomain(spec.domain, address);
  if (opts.smtputf8 && !isAscii(domain) && !domain.startsWith("[")) toAsciiDomain(domain, address);
  // RFC 5321 allows them in a quoted local part, but a lenient reader may end the path there.
  if (spec.local.includes("<") || spec.local.includes(">")) fail(address, 'a local part with "<" or ">" is not sent in an SMTP envelope');
  const out = `${renderLocal(spec.local)}@${domain}`;
  if (Buffer.byteLength(out) > MAX_ENVELOPE_ADDRESS) {
    fail(address, `longer than ${MAX_ENVELOPE_ADDRESS} octets (RFC 5321 §4.5.3.1.3)`);
  }
  return out;
}

/** True when the address's local part is non-ASCII, so sending to or from it needs SMTPUTF8. */
export function needsSmtpUtf8(address: string): boolean {
  try {
    return !isAscii(parseAddrSpec(address.trim(), false).local);
  } catch {
    const at = address.lastIndexOf("@");
    return !isAscii(at < 0 ? address : address.slice(0, at));
  }
}

/**
 * What makes two addresses the same mailbox, for de-duplication: the local part as given
 * (RFC 5321 §2.4: only the receiving host may fold its case) and the domain compared
 * case-insensitively, in its A-label form, so that `Bücher.example` and
 * `xn--bcher-kva.example` are one domain (RFC 5890 §2.3.2.1).
 */
export function mailboxKey(address: string): string {
  return keyOf(parseAddrSpec(address.trim(), false), address);
}

/** `mailboxKey(m.address)`, without parsing a kept mailbox again. */
export function mailboxKeyOf(m: Mailbox): string {
  const spec = keptSpec(m);
  return spec === undefined ? mailboxKey(m.address) : keyOf(spec, m.address);
}

/** `needsSmtpUtf8(m.address)`, without parsing a kept mailbox again. */
export function mailboxNeedsSmtpUtf8(m: Mailbox): boolean {
  const spec = keptSpec(m);
  return spec === undefined ? needsSmtpUtf8(m.address) : !isAscii(spec.local);
}

function keyOf(spec: AddrSpec, address: string): string {
  const domain = spec.domain.startsWith("[") || isAscii(spec.domain) ? spec.domain.toLowerCase() : toAsciiDomain(spec.domain, address);
  return `${renderLocal(spec.local)}@${domain}`;
}
