/**
 * SMTP commands as pure functions that render their own line (CRLF included).
 *
 * Every argument is validated before anything is rendered: CR, LF, NUL and other
 * characters that could end or bend a command throw `InvalidArgumentError`, so no caller
 * can inject a second command (Go's net/smtp does the same in every command). ESMTP
 * parameters follow their RFCs: xtext (RFC 3461 §4) for ENVID and ORCPT,
 * utf-8-addr-xtext (RFC 6533 §3) for a non-ASCII ORCPT.
 */
import { InvalidArgumentError } from "../errors.js";

const CRLF = "\r\n";

/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets. */
const MAX_PATH_OCTETS = 256;
/** RFC 3461 §4.4: ENVID is at most 100 characters (before xtext encoding). */
const MAX_ENVID = 100;

export type BodyType = "7BIT" | "8BITMIME";
export type DsnRet = "FULL" | "HDRS";
export type DsnNotify = "SUCCESS" | "FAILURE" | "DELAY" | "NEVER";

export interface MailFromParams {
  /** RFC 1870 SIZE=; only when the server advertised SIZE. */
  size?: number | undefined;
  /** RFC 6152 BODY=; only when the server advertised 8BITMIME. */
  body?: BodyType | undefined;
  /** RFC 6531 SMTPUTF8; also allows a non-ASCII reverse-path. */
  smtputf8?: boolean | undefined;
  /** RFC 3461 RET= */
  ret?: DsnRet | undefined;
  /** RFC 3461 ENVID= (printable ASCII, xtext-encoded here). */
  envid?: string | undefined;
}

export interface RcptToParams {
  /** RFC 3461 NOTIFY=: NEVER alone, or any of SUCCESS, FAILURE, DELAY. */
  notify?: readonly DsnNotify[] | undefined;
  /** RFC 3461 ORCPT= the original recipient address (rendered as rfc822;xtext or utf-8;utf-8-addr-xtext). */
  orcpt?: string | undefined;
  /** Allow a non-ASCII forward-path (the transaction uses SMTPUTF8). */
  smtputf8?: boolean | undefined;
}

export function ehlo(name: string): string {
  return `EHLO ${assertHeloName(name)}${CRLF}`;
}

export function helo(name: string): string {
  return `HELO ${assertHeloName(name)}${CRLF}`;
}

export function starttls(): string {
  return `STARTTLS${CRLF}`;
}

export function mailFrom(address: string, params: MailFromParams = {}): string {
  let line = `MAIL FROM:<${assertPath(address, "MAIL FROM address", params.smtputf8 === true, true)}>`;
  if (params.size !== undefined) {
    if (!Number.isSafeInteger(params.size) || params.size < 0) {
      throw new InvalidArgumentError(`SIZE must be a non-negative integer, got ${String(params.size)}`);
    }
    line += ` SIZE=${params.size}`;
  }
  if (params.body !== undefined) {
    if (params.body !== "7BIT" && params.body !== "8BITMIME") {
      throw new InvalidArgumentError(`BODY must be "7BIT" or "8BITMIME", got ${JSON.stringify(params.body)}`);
    }
    line += ` BODY=${params.body}`;
  }
  if (params.smtputf8) line += " SMTPUTF8";
  if (params.ret !== undefined) {
    if (params.ret !== "FULL" && params.ret !== "HDRS") {
      throw new InvalidArgumentError(`DSN RET must be "FULL" or "HDRS", got ${JSON.stringify(params.ret)}`);
    }
    line += ` RET=${params.ret}`;
  }
  if (params.envid !== undefined) {
    line += ` ENVID=${xtext(assertEnvid(params.envid))}`;
  }
  return line + CRLF;
}

export function rcptTo(address: string, params: RcptToParams = {}): string {
  let line = `RCPT TO:<${assertPath(address, "RCPT TO address", params.smtputf8 === true, false)}>`;
  if (params.notify !== undefined) {
    line += ` NOTIFY=${renderNotify(params.notify)}`;
  }
  if (params.orcpt !== undefined) {
    line += ` ORCPT=${renderOrcpt(params.orcpt, params.smtputf8 === true)}`;
  }
  return line + CRLF;
}

export function data(): string {
  return `DATA${CRLF}`;
}

/** RFC 3030 BDAT: `size` octets follow the command; `last` ends the transaction. */
export function bdat(size: number, last: boolean): string {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new InvalidArgumentError(`BDAT size must be a non-negative integer, got ${String(size)}`);
  }
  return `BDAT ${size}${last ? " LAST" : ""}${CRLF}`;
}

export function rset(): string {
  return `RSET${CRLF}`;
}

export function noop(): string {
  return `NOOP${CRLF}`;
}

export function quit(): string {
  return `QUIT${CRLF}`;
}

/** RFC 4954 AUTH, with an optional base64 initial response ("=" stands for an empty one). */
export function auth(mechanism: string, initialResponse?: string): string {
  if (!isMechanismName(mechanism)) {
    throw new InvalidArgumentError(`Invalid SASL mechanism name ${JSON.stringify(mechanism)}`);
  }
  if (initialResponse === undefined) return `AUTH ${mechanism}${CRLF}`;
  return `AUTH ${mechanism} ${initialResponse === "" ? "=" : assertBase64(initialResponse)}${CRLF}`;
}

/** A SASL response line (base64), or "*" to cancel the exchange (RFC 4954 §4). */
export function authResponse(base64: string): string {
  if (base64 === "*") return `*${CRLF}`;
  return `${assertBase64(base64)}${CRLF}`;
}

// --- validation -------------------------------------------------------------------------

/**
 * An EHLO/HELO argument: a domain (letters, digits, hyphens, dots) or an address literal
 * in brackets (RFC 5321 §4.1.3): `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
 */
export function assertHeloName(name: string): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 255) {
    throw new InvalidArgumentError(`Invalid EHLO name ${JSON.stringify(name)}: must be 1–255 characters`);
  }
  if (name.startsWith("[")) {
    if (!name.endsWith("]") || name.length < 3) throw badHeloName(name);
    for (let i = 1; i < name.length - 1; i++) {
      const c = name.charCodeAt(i);
      if (!(isAlnum(c) || c === 0x2e || c === 0x3a || c === 0x2d)) throw badHeloName(name);
    }
    return name;
  }
  for (const label of name.split(".")) {
    if (label.length === 0 || label.length > 63) throw badHeloName(name);
    for (let i = 0; i < label.length; i++) {
      const c = label.charCodeAt(i);
      if (!(isAlnum(c) || (c === 0x2d && i > 0 && i < label.length - 1))) throw badHeloName(name);
    }
  }
  return name;
}

function badHeloName(name: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `Invalid EHLO name ${JSON.stringify(name)}: use a domain name (letters, digits, hyphens, dots) or an address literal such as [192.0.2.1]`,
  );
}

/**
 * Checks an envelope address for use between angle brackets. Rejects control characters
 * (CR, LF, NUL among them), space, `<` and `>`; non-ASCII only when `utf8`. A local part
 * may be a quoted string (RFC 5321 §4.1.2 Quoted-string: `"a b"@example.org`), which may
 * hold spaces and quoted-pairs (`\"`, `\\`) and must end right before the `@`; `<` and `>`
 * are refused inside it too, so that no lenient reader takes one for the end of the path.
 */
export function assertPath(address: string, what: string, utf8: boolean, allowEmpty: boolean): string {
  if (typeof address !== "string") throw new InvalidArgumentError(`${what} must be a string`);
  if (address === "") {
    if (allowEmpty) return address;
    throw new InvalidArgumentError(`${what} must not be empty`);
  }
  let inQuotes = address.charCodeAt(0) === 0x22;
  for (let i = inQuotes ? 1 : 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (inQuotes && c === 0x22) {
      if (address.charCodeAt(i + 1) !== 0x40) throw new InvalidArgumentError(`${what} ${JSON.stringify(address)} has a quoted local part that is not followed by "@"`);
      inQuotes = false;
      continue;
    }
    if (inQuotes && c === 0x5c) {
      // quoted-pairSMTP = "\" followed by %d32-126 (RFC 5321 §4.1.2).
      const next = address.charCodeAt(++i);
      if (!(next >= 0x20 && next <= 0x7e && next !== 0x3c && next !== 0x3e)) {
        throw new InvalidArgumentError(`${what} ${JSON.stringify(address)} has a "\\" in its quoted local part that does not quote a printable character`);
      }
      continue;
    }
    if (inQuotes && c === 0x20) continue;
    if (c < 0x21 || c === 0x7f || c === 0x3c || c === 0x3e) {
      throw new InvalidArgumentError(
        `${what} ${JSON.stringify(address)} contains ${describeChar(c)}, which is not allowed in an SMTP envelope address`,
      );
    }
    if (c > 0x7e && !utf8) {
      throw new InvalidArgumentError(`${what} ${JSON.stringify(address)} contains non-ASCII characters and needs SMTPUTF8`);
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const pair = c <= 0xdbff && i + 1 < address.length && address.charCodeAt(i + 1) >= 0xdc00 && address.charCodeAt(i + 1) <= 0xdfff;
      if (!pair) throw new InvalidArgumentError(`${what} ${JSON.stringify(address)} contains a lone surrogate`);
      i++;
    }
  }
  if (inQuotes) throw new InvalidArgumentError(`${what} ${JSON.stringify(address)} has an unclosed quoted local part`);
  if (Buffer.byteLength(address, "utf8") + 2 > MAX_PATH_OCTETS) {
    throw new InvalidArgumentError(`${what} is longer than ${MAX_PATH_OCTETS - 2} octets (RFC 5321 §4.5.3.1.3)`);
  }
  return address;
}

export function hasNonAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return true;
  return false;
}

function assertEnvid(envid: string): string {
  if (typeof envid !== "string" || envid.length === 0 || envid.length > MAX_ENVID) {
    throw new InvalidArgumentError(`DSN ENVID must be 1–${MAX_ENVID} characters`);
  }
  for (let i = 0; i < envid.length; i++) {
    const c = envid.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      throw new InvalidArgumentError(`DSN ENVID contains ${describeChar(c)}; only printable ASCII is allowed (RFC 3461 §4.4)`);
    }
  }
  return envid;
}

function renderNotify(notify: readonly DsnNotify[]): string {
  if (!Array.isArray(notify) || notify.length === 0) {
    throw new InvalidArgumentError("DSN NOTIFY must list NEVER, or one or more of SUCCESS, FAILURE, DELAY");
  }
  const seen = new Set<string>();
  for (const n of notify) {
    if (n !== "SUCCESS" && n !== "FAILURE" && n !== "DELAY" && n !== "NEVER") {
      throw new InvalidArgumentError(`Unknown DSN NOTIFY value ${JSON.stringify(n)}`);
    }
    seen.add(n);
  }
  if (seen.has("NEVER") && seen.size > 1) {
    throw new InvalidArgumentError("DSN NOTIFY=NEVER cannot be combined with other values (RFC 3461 §4.1)");
  }
  return [...seen].join(",");
}

function renderOrcpt(address: string, utf8: boolean): string {
  assertPath(address, "DSN ORCPT address", true, false);
  if (!hasNonAscii(address)) return `rfc822;${xtext(address)}`;
  if (!utf8) throw new InvalidArgumentError("A non-ASCII DSN ORCPT address needs SMTPUTF8 (RFC 6533)");
  return `utf-8;${utf8AddrXtext(address)}`;
}

/** RFC 3461 §4: xtext. "+" , "=" and characters outside "!".."~" become "+HH". */
export function xtext(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) throw new InvalidArgumentError("xtext can only carry ASCII");
    if (c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d) out += text[i];
    else out += `+${c.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** RFC 6533 §3: utf-8-addr-xtext; "+", "=", "\" and controls become \x{HEX}, other UTF-8 stays. */
export function utf8AddrXtext(text: string): string {
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const safeAscii = cp >= 0x21 && cp <= 0x7e && cp !== 0x2b && cp !== 0x3d && cp !== 0x5c;
    out += safeAscii || cp > 0x7f ? ch : `\\x{${cp.toString(16).toUpperCase()}}`;
  }
  return out;
}

function assertBase64(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!(isAlnum(c) || c === 0x2b || c === 0x2f || c === 0x3d)) {
      throw new InvalidArgumentError("A SASL response must be base64");
    }
  }
  return text;
}

function isMechanismName(name: string): boolean {
  // RFC 4422 §3.1: 1–20 of upper-case letters, digits, "-" and "_".
  if (typeof name !== "string" || name.length === 0 || name.length > 20) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) return false;
  }
  return true;
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function describeChar(c: number): string {
  switch (c) {
    case 0x0d:
      return "a carriage return (CR)";
    case 0x0a:
      return "a line feed (LF)";
    case 0x00:
      return "a NUL character";
    case 0x20:
      return "a space";
    default:
      return `the character U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
  }
}
