/**
 * Email addresses read: RFC 5322 §3.4 address lists, mailboxes and addr-specs, RFC 6532
 * (UTF-8 addresses), checked and made canonical. Formatting them for a header or the SMTP
 * envelope is address.ts, which is also where the rest of the code imports these from.
 *
 * The parser is a hand-written linear scanner (tokenizer + recursive descent, no regexes
 * on the input), forgiving where real mail is (white space and comments around any token,
 * `John Q. Public` obs-phrases, odd dots in local parts, obs-route in angle addresses,
 * empty list elements) and strict where safety is at stake (controls, unbalanced
 * delimiters, anything that would let an address escape its header or SMTP command).
 *
 * Decisions:
 * - CR, LF and NUL make `parseAddressList` throw `InvalidAddressError`;
 *   `normalizeAddresses` checks first and throws `BadHeaderError` naming the field, because
 *   there the input is a header value and a line break is an injection attempt.
 * - Comments are dropped, except that a bare `addr-spec (Comment)` with no display name
 *   takes the comment as its name, as Python's `email.utils.getaddresses` does.
 * - RFC 2047 encoded-words are decoded in display-name atoms and comments, not inside
 *   quoted strings (RFC 2047 §5(3)).
 * - `Mailbox.address` is canonical: the local part unquoted when it needs no quotes
 *   (`"john"@x.org` becomes `john@x.org`), quoted with `\` escapes otherwise; the domain as
 *   written (it may be Unicode; IDNA is applied when formatting for the wire).
 * - A caller that keeps a message's addresses takes them from `canonicalEntries`: frozen,
 *   each with the addr-spec it was parsed from, so that nothing reads them twice.
 */
import { BadHeaderError, InvalidAddressError, InvalidArgumentError } from "../errors.js";
import { assertWellFormed } from "./encoding/charset.js";
import { decodeWords } from "./encoding/encoded-word.js";
import { quoteString } from "./encoding/rfc2231.js";
import { checkDomain } from "./domain.js";

export interface Mailbox {
  name: string;
  /** `local@domain`; the local part quoted if it must be; the domain may be Unicode. */
  address: string;
}

export interface Group {
  group: string;
  members: Mailbox[];
}

export type AddressInput = string | Mailbox | readonly (string | Mailbox)[];

/** RFC 5321 §4.5.3.1.1. */
const MAX_LOCAL_PART = 64;

// ---------------------------------------------------------------------------------------
// Character classes (RFC 5322 §3.2.3 atext; RFC 6532 §3.2 adds UTF8-non-ascii)

const ATEXT = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) ATEXT[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) ATEXT[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) ATEXT[c] = 1;
for (const ch of "!#$%&'*+-/=?^_`{|}~") ATEXT[ch.charCodeAt(0)] = 1;

/** atext, or any non-ASCII code unit (RFC 6532). Controls are rejected before this is asked. */
export function isAtomChar(code: number): boolean {
  return code >= 0x80 ? true : ATEXT[code] === 1;
}

function isWsp(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** C0 controls other than tab, DEL, and the C1 range. */
export function isControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09) || (code >= 0x7f && code <= 0x9f);
}

export function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** A short, escaped rendering of untrusted input for an error message. */
/**
 * What to write instead of a local part alone ("tester", Django #15042): refused on every
 * backend, because RFC 5322 §3.4.1 addr-spec is local-part "@" domain, and an address
 * without a domain is read differently by each server (some append their own domain, most
 * refuse it) — the same message would go somewhere else, or nowhere, depending on the relay.
 */
function localOnlyAdvice(text: string): string {
  if (!/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/.test(text)) return "";
  return `: an address needs a domain (RFC 5322 addr-spec is local-part@domain); write "${text}@example.com", or "${text}@localhost" for a mailbox on this machine`;
}

export function show(text: string): string {
  const cut = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return JSON.stringify(cut);
}

export function fail(input: string, problem: string): never {
  throw new InvalidAddressError(input, `Invalid address ${show(input)}: ${problem}`);
}

export function describeChar(code: number): string {
  if (code === 0x0d) return "a carriage return (CR)";
  if (code === 0x0a) return "a line feed (LF)";
  if (code === 0x00) return "a NUL character";
  return `control character U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Offset of the first CR, LF or NUL, or -1. */
export function findLineBreakOrNul(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0d || c === 0x0a || c === 0x00) return i;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------
// Recent results

/*
 * Parsing is pure, and the same addresses come again and again: one message reads each of
 * its addresses several times (checked when set, then for the envelope, the de-duplication
 * of recipients, the SMTPUTF8 check and the header), and a batch sends from one From to
 * overlapping recipients. So the last few hundred results are kept, keyed by the input
 * (errors are not: a bad address is refused afresh each time). Address lists are handed
 * out as copies, since callers own the objects they get.
 */
const MEMO_ENTRIES = 256;
/** Longer inputs (a To: with thousands of addresses) are parsed each time rather than kept. */
const MEMO_INPUT_LENGTH = 2048;
const LISTS = new Map<string, readonly (Mailbox | Group)[]>();
const SPECS = new Map<string, AddrSpec>();
const STRICT_SPECS = new Map<string, AddrSpec>();

function remember<T>(memo: Map<string, T>, input: string, value: T): void {
  if (input.length > MEMO_INPUT_LENGTH) return;
  if (memo.size >= MEMO_ENTRIES) memo.delete(memo.keys().next().value as string);
  memo.set(input, value);
}

function copyEntries(entries: readonly (Mailbox | Group)[]): (Mailbox | Group)[] {
  return entries.map((e) => ("group" in e ? { group: e.group, members: e.members.map(copyMailbox) } : copyMailbox(e)));
}

function copyMailbox(m: Mailbox): Mailbox {
  const copy = { name: m.name, address: m.address };
  const spec = SPEC_OF.get(m);
  if (spec !== undefined) SPEC_OF.set(copy, spec);
  return copy;
}

/**
 * The addr-spec each mailbox this module made was parsed from, for `canonicalEntries`, so
 * that what is later worked out from a kept mailbox (its SMTP form, its de-duplication key,
 * whether it needs SMTPUTF8) does not parse its address again. Read only for mailboxes no
 * caller has had yet (a caller's copy may have been changed since).
 */
const SPEC_OF = new WeakMap<Mailbox, AddrSpec>();

function mailboxOf(name: string, spec: AddrSpec): Mailbox {
  const mailbox = { name, address: renderSpec(spec) };
  SPEC_OF.set(mailbox, spec);
  return mailbox;
}

// ---------------------------------------------------------------------------------------
// Tokenizer

type TokenKind = "atom" | "quoted" | "literal" | "special" | "end";

interface Token {
  kind: TokenKind;
  /** atom: raw text; quoted: unescaped content; literal: `[...]` without white space; special: the character. */
  text: string;
  pos: number;
  /** White space or a comment came before this token. */
  ws: boolean;
  /** Comments (content, quoted-pairs resolved) that came directly before this token. */
  comments: string[];
}

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let ws = false;
  let comments: string[] = [];
  let i = 0;
  const n = input.length;
  const push = (kind: TokenKind, text: string, pos: number): void => {
    tokens.push({ kind, text, pos, ws, comments });
    ws = false;
    comments = [];
  };
  while (i < n) {
    const c = input.charCodeAt(i);
    if (isWsp(c)) {
      ws = true;
      i++;
    } else if (c === 0x28 /* ( */) {
      const start = i;
      let depth = 0;
      let text = "";
      for (;;) {
        if (i >= n) fail(input, `unclosed comment "(" at offset ${start}`);
        const d = input.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          if (i + 1 >= n) fail(input, `unclosed comment "(" at offset ${start}`);
          text += input[i + 1];
          i += 2;
          continue;
        }
        if (isControl(d)) fail(input, `${describeChar(d)} at offset ${i}`);
        if (d === 0x28) {
          if (depth > 0) text += "(";
          depth++;
        } else if (d === 0x29) {
          depth--;
          if (depth === 0) {
            i++;
            break;
          }
          text += ")";
        } else {
          text += input[i];
        }
        i++;
      }
      comments.push(text);
      ws = true;
    } else if (c === 0x22 /* " */) {
      const start = i;
      i++;
      let text = "";
      for (;;) {
        if (i >= n) fail(input, `unclosed quoted string starting at offset ${start}`);
        const d = input.charCodeAt(i);
        if (d === 0x22) {
          i++;
          break;
        }
        if (d === 0x5c) {
          if (i + 1 >= n) fail(input, `unclosed quoted string starting at offset ${start}`);
          const e = input.charCodeAt(i + 1);
          if (isControl(e)) fail(input, `${describeChar(e)} at offset ${i + 1}`);
          text += input[i + 1];
          i += 2;
          continue;
        }
        if (isControl(d)) fail(input, `${describeChar(d)} at offset ${i}`);
        text += input[i];
        i++;
      }
      push("quoted", text, start);
    } else if (c === 0x5b /* [ */) {
      const start = i;
      i++;
      let text = "[";
      for (;;) {
        if (i >= n) fail(input, `unclosed domain literal "[" at offset ${start}`);
        const d = input.charCodeAt(i);
        if (d === 0x5d) {
          i++;
          break;
        }
        if (d === 0x5b || d === 0x5c) fail(input, `"${input[i]}" inside a domain literal at offset ${i}`);
        if (isControl(d) || d >= 0x80) fail(input, `invalid character ${show(input[i] ?? "")} inside a domain literal at offset ${i}`);
        if (!isWsp(d)) text += input[i];
        i++;
      }
      push("literal", `${text}]`, start);
    } else if (c === 0x3c || c === 0x3e || c === 0x40 || c === 0x2c || c === 0x3b || c === 0x3a || c === 0x2e) {
      push("special", input[i] as string, i);
      i++;
    } else if (c === 0x29) {
      fail(input, `unbalanced ")" at offset ${i}`);
    } else if (c === 0x5d) {
      fail(input, `unbalanced "]" at offset ${i}`);
    } else if (c === 0x5c) {
      fail(input, `a backslash outside a quoted string at offset ${i}`);
    } else if (isControl(c)) {
      fail(input, `${describeChar(c)} at offset ${i}`);
    } else if (isAtomChar(c)) {
      const start = i;
      while (i < n) {
        const d = input.charCodeAt(i);
        if (!isAtomChar(d) || isControl(d)) break;
        i++;
      }
      push("atom", input.slice(start, i), start);
    } else {
      fail(input, `invalid character ${show(input[i] ?? "")} at offset ${i}`);
    }
  }
  push("end", "", n);
  return tokens;
}

// ---------------------------------------------------------------------------------------
// Parser

export interface AddrSpec {
  /** The local part's content: quotes removed, quoted-pairs resolved. */
  local: string;
  /** A dot-atom domain (possibly Unicode) or a `[literal]`. */
  domain: string;
}

class Parser {
  private i = 0;
  constructor(
    readonly input: string,
    private readonly tokens: Token[],
  ) {}

  peek(): Token {
    return this.tokens[this.i] as Token;
  }

  next(): Token {
    const t = this.tokens[this.i] as Token;
    if (t.kind !== "end") this.i++;
    return t;
  }

  isSpecial(t: Token, ch: string): boolean {
    return t.kind === "special" && t.text === ch;
  }

  fail(problem: string): never {
    fail(this.input, problem);
  }

  describe(t: Token): string {
    if (t.kind === "end") return "the end of the input";
    if (t.kind === "quoted") return `a quoted string at offset ${t.pos}`;
    if (t.kind === "literal") return `a domain literal at offset ${t.pos}`;
    return `${JSON.stringify(t.text)} at offset ${t.pos}`;
  }

  /** Atoms, quoted strings and dots: a phrase, or the start of an addr-spec. */
  words(): Token[] {
    const out: Token[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === "atom" || t.kind === "quoted" || this.isSpecial(t, ".")) out.push(this.next());
      else return out;
    }
  }

  address(allowGroup: boolean): Mailbox | Group {
    const words = this.words();
    const t = this.peek();
    if (this.isSpecial(t, "<")) {
      this.next();
      const spec = this.angleAddr(t.pos);
      return mailboxOf(phraseText(words), spec);
    }
    if (this.isSpecial(t, ":")) {
      if (!allowGroup) this.fail(`a group cannot be nested inside another group (":" at offset ${t.pos})`);
      const name = phraseText(words);
      if (words.length === 0) this.fail(`a group needs a name before ":" at offset ${t.pos}`);
      this.next();
      const members: Mailbox[] = [];
      for (;;) {
        const u = this.peek();
        if (this.isSpecial(u, ";")) {
          this.next();
          break;
        }
        if (this.isSpecial(u, ",")) {
          this.next();
          continue;
        }
        if (u.kind === "end") this.fail(`group ${show(name)} is not closed with ";"`);
        members.push(this.address(false) as Mailbox);
        const v = this.peek();
        if (!this.isSpecial(v, ",") && !this.isSpecial(v, ";")) {
          if (v.kind === "end") this.fail(`group ${show(name)} is not closed with ";"`);
          this.fail(`expected "," or ";" in group ${show(name)} but found ${this.describe(v)}`);
        }
      }
      return { group: name, members };
    }
    if (this.isSpecial(t, "@")) {
      const local = localPart(this, words, t);
      this.next();
      const domain = this.domain(t.pos);
      const after = this.peek();
      const name = after.comments.length > 0 ? decodeWords(after.comments.join(" ").trim()) : "";
      return mailboxOf(name, Object.freeze({ local, domain }));
    }
    if (t.kind === "literal") this.fail(`a domain literal must follow "@" (${this.describe(t)})`);
    if (words.length === 0) this.fail(`expected an address but found ${this.describe(t)}`);
    const first = words[0] as Token;
    const text = this.input.slice(first.pos, t.kind === "end" ? this.input.length : t.pos).trim();
    this.fail(`missing "@" in ${show(text)} at offset ${first.pos}${localOnlyAdvice(text)}`);
  }

  /** After "<": [obs-route] addr-spec ">". */
  angleAddr(open: number): AddrSpec {
    let t = this.peek();
    if (this.isSpecial(t, ">")) this.fail(`empty angle address "<>" at offset ${open}`);
    if (this.isSpecial(t, "@")) {
      // obs-route (RFC 5322 §4.4): "@a.example,@b.example:" is ignored.
      while (!this.isSpecial(this.peek(), ":")) {
        const u = this.next();
        if (u.kind === "end" || this.isSpecial(u, ">")) this.fail(`malformed route in the angle address at offset ${open}`);
      }
      this.next();
    }
    const words = this.words();
    t = this.peek();
    if (!this.isSpecial(t, "@")) {
      if (t.kind === "end") this.fail(`unclosed "<" at offset ${open}`);
      if (words.length > 0 && this.isSpecial(t, ">")) this.fail(`missing "@" in the angle address at offset ${open}`);
      this.fail(`unexpected ${this.describe(t)} in the angle address at offset ${open}`);
    }
    const local = localPart(this, words, t);
    this.next();
    const domain = this.domain(t.pos);
    const close = this.next();
    if (!this.isSpecial(close, ">")) {
      if (close.kind === "end") this.fail(`unclosed "<" at offset ${open}`);
      this.fail(`expected ">" but found ${this.describe(close)}`);
    }
    return Object.freeze({ local, domain });
  }

  /** After "@": dot-atom or domain literal. */
  domain(at: number): string {
    const t = this.peek();
    if (t.kind === "literal") {
      this.next();
      return t.text;
    }
    if (t.kind !== "atom") {
      if (this.isSpecial(t, ".")) this.fail(`the domain starts with "." at offset ${t.pos}`);
      this.fail(`missing domain after "@" at offset ${at}`);
    }
    let domain = this.next().text;
    while (this.isSpecial(this.peek(), ".")) {
      const dot = this.next();
      const label = this.peek();
      if (label.kind !== "atom") {
        if (this.isSpecial(label, ".")) this.fail(`empty label ".." in the domain at offset ${dot.pos}`);
        this.fail(`the domain ends with "." at offset ${dot.pos}`);
      }
      domain += `.${this.next().text}`;
    }
    const { problem } = checkDomain(domain);
    if (problem !== undefined) this.fail(problem);
    return domain;
  }
}

/** The content of a local part from `word *("." word)` tokens; obs forms with odd dots are kept. */
function localPart(p: Parser, words: Token[], at: Token): string {
  if (words.length === 0) p.fail(`missing local part before "@" at offset ${at.pos}`);
  let local = "";
  let prevWord = false;
  for (const w of words) {
    if (w.kind === "special") {
      local += ".";
      prevWord = false;
      continue;
    }
    if (prevWord) {
      p.fail(`unexpected space in the local part at offset ${w.pos} (a local part with spaces must be quoted: "john doe"@example.com)`);
    }
    local += w.text;
    prevWord = true;
  }
  // RFC 5321 §4.5.3.1.1, counted as the local part is written (quotes included).
  const octets = Buffer.byteLength(renderLocal(local));
  if (octets > MAX_LOCAL_PART) p.fail(`the local part is ${octets} octets, longer than ${MAX_LOCAL_PART} octets (RFC 5321 §4.5.3.1.1)`);
  return local;
}

/**
 * A display name from phrase tokens: white space collapsed, encoded-words in atoms decoded.
 * An empty quoted string is a word too (`"" =?utf-8?q?x?=` is " x").
 */
function phraseText(words: Token[]): string {
  let out = "";
  let started = false;
  let run = "";
  let runSpace = false;
  const flush = (): void => {
    if (run === "") return;
    out += (runSpace ? " " : "") + decodeWords(run);
    run = "";
    started = true;
  };
  for (const w of words) {
    if (w.kind === "quoted") {
      flush();
      out += (w.ws && started ? " " : "") + w.text;
      started = true;
    } else {
      if (run === "") {
        runSpace = w.ws && started;
        run = w.text;
      } else {
        run += (w.ws ? " " : "") + w.text;
      }
    }
  }
  flush();
  return out;
}

/** Local parts that need no quotes: atext (RFC 6532: and non-ASCII) and dots, non-empty. */
function isBareLocal(local: string): boolean {
  if (local === "") return false;
  for (let i = 0; i < local.length; i++) {
    const c = local.charCodeAt(i);
    if (c === 0x2e) continue;
    if (isControl(c) || !isAtomChar(c)) return false;
  }
  return true;
}

export function renderLocal(local: string): string {
  return isBareLocal(local) ? local : quoteString(local);
}

function renderSpec(spec: AddrSpec): string {
  return `${renderLocal(spec.local)}@${spec.domain}`;
}

export function checkString(input: unknown, what: string): asserts input is string {
  if (typeof input !== "string") throw new InvalidArgumentError(`${what} must be a string, got ${input === null ? "null" : typeof input}`);
}

function checkChars(input: string, field: string): void {
  const bad = findLineBreakOrNul(input);
  if (bad >= 0) fail(input, `${describeChar(input.charCodeAt(bad))} at offset ${bad}`);
  assertWellFormed(input, field);
}

/**
 * Parses an RFC 5322 address-list: mailboxes and groups, comma-separated. Empty input (or
 * only white space and commas) gives an empty list.
 *
 * @throws InvalidAddressError saying what is wrong and at which offset.
 * @throws EncodingError for a lone surrogate.
 */
export function parseAddressList(input: string, field = "address"): (Mailbox | Group)[] {
  checkString(input, field);
  const known = LISTS.get(input);
  if (known !== undefined) return copyEntries(known);
  const out = parseList(input, field);
  remember(LISTS, input, copyEntries(out));
  return out;
}

/** `parseAddressList` without its memo. */
function parseList(input: string, field: string): (Mailbox | Group)[] {
  checkChars(input, field);
  const p = new Parser(input, tokenize(input));
  const out: (Mailbox | Group)[] = [];
  for (;;) {
    const t = p.peek();
    if (t.kind === "end") break;
    if (p.isSpecial(t, ",")) {
      p.next();
      continue;
    }
    out.push(p.address(true));
    const u = p.peek();
    if (u.kind === "end") break;
    if (!p.isSpecial(u, ",")) p.fail(`expected "," between addresses but found ${p.describe(u)}`);
  }
  return out;
}

/** Parses exactly one mailbox (`Name <a@x.org>`, `a@x.org`, `a@x.org (Name)`). */
export function parseMailbox(input: string, field = "address"): Mailbox {
  const list = parseAddressList(input, field);
  if (list.length === 0) fail(input, "the address is empty");
  if (list.length > 1) fail(input, `expected one address but found ${list.length}`);
  const item = list[0] as Mailbox | Group;
  if ("group" in item) fail(input, `expected one address but found the group ${show(item.group)}`);
  return item;
}

/**
 * Parses a bare addr-spec. Strict: no display name, no comments and no white space outside
 * quotes (what an SMTP path and `Mailbox.address` may hold); lenient trims outer white space.
 */
export function parseAddrSpec(input: string, strict: boolean): AddrSpec {
  const memo = strict ? STRICT_SPECS : SPECS;
  const known = memo.get(input);
  if (known !== undefined) return known;
  const spec = Object.freeze(readAddrSpec(input, strict));
  remember(memo, input, spec);
  return spec;
}

function readAddrSpec(input: string, strict: boolean): AddrSpec {
  const tokens = tokenize(input);
  const p = new Parser(input, tokens);
  const first = p.peek();
  if (first.kind === "end") fail(input, "the address is empty");
  if (strict) {
    for (const t of tokens) {
      if (t.comments.length > 0) fail(input, `a comment is not allowed here (before offset ${t.pos})`);
      if (t.ws) fail(input, `white space is not allowed outside quotes (before offset ${t.pos})`);
    }
  }
  const words = p.words();
  const at = p.peek();
  if (!p.isSpecial(at, "@")) {
    if (at.kind === "end") fail(input, `missing "@" in ${show(input.trim())}${localOnlyAdvice(input.trim())}`);
    fail(input, `a bare address (local@domain) was expected but found ${p.describe(at)}`);
  }
  const local = localPart(p, words, at);
  p.next();
  const domain = p.domain(at.pos);
  const end = p.peek();
  if (end.kind !== "end") fail(input, `unexpected ${p.describe(end)} after the address`);
  return { local, domain };
}

/**
 * Mailboxes this module made and froze (`canonicalEntries`): already checked and
 * canonical, so checking them again (each header render does) returns them as they are.
 */
const CANONICAL = new WeakMap<Mailbox, AddrSpec>();

/** The addr-spec of a mailbox from `canonicalEntries`; undefined for any other. */
export function keptSpec(m: Mailbox): AddrSpec | undefined {
  return CANONICAL.get(m);
}

export function validateMailbox(item: Mailbox, field: string): Mailbox {
  if (CANONICAL.has(item)) return item;
  const { name, address } = item as { name?: unknown; address?: unknown };
  checkString(address, `${field}: the address of a mailbox`);
  const label = name === undefined || name === null ? "" : name;
  checkString(label, `${field}: the name of a mailbox`);
  for (const [what, text] of [["display name", label], ["address", address]] as const) {
    const bad = findLineBreakOrNul(text);
    if (bad >= 0) throw new BadHeaderError(field, `The ${what} in ${field} contains ${describeChar(text.charCodeAt(bad))} at offset ${bad}`);
  }
  assertWellFormed(label, `${field} display name`);
  assertWellFormed(address, `${field} address`);
  return mailboxOf(label, parseAddrSpec(address.trim(), false));
}

/**
 * An address field as a header holds it: a string is parsed as an RFC 5322 list (never split
 * into characters) with its groups kept, each array item is parsed as a mailbox or a list,
 * and `{ name, address }` objects are validated and their address canonicalized.
 *
 * @throws BadHeaderError (naming `field`) for CR, LF or NUL anywhere.
 * @throws InvalidAddressError for anything that is not an address.
 */
export function parseAddressEntries(input: AddressInput | undefined, field: string): (Mailbox | Group)[] {
  if (input === undefined || input === null) return [];
  const items: readonly unknown[] = Array.isArray(input) ? input : [input];
  const out: (Mailbox | Group)[] = [];
  for (const item of items) {
    if (typeof item === "string") {
      const bad = findLineBreakOrNul(item);
      if (bad >= 0) throw new BadHeaderError(field, `${field} contains ${describeChar(item.charCodeAt(bad))} at offset ${bad}; header values must be one line`);
      out.push(...parseAddressList(item, field));
    } else if (typeof item === "object" && item !== null && "address" in item) {
      out.push(validateMailbox(item as Mailbox, field));
    } else {
      throw new InvalidArgumentError(`${field} must be a string, a { name, address } object or an array of them, got ${item === null ? "null" : typeof item}`);
    }
  }
  return out;
}

/**
 * `parseAddressEntries`, frozen: for a caller that keeps the entries and hands them on
 * (a message parses each field once); checking a frozen mailbox again costs nothing.
 */
export function canonicalEntries(input: AddressInput | undefined, field: string): readonly (Mailbox | Group)[] {
  if (input === undefined || input === null) return NO_ENTRIES;
  const items: readonly unknown[] = Array.isArray(input) ? input : [input];
  if (items.length === 1 && typeof items[0] === "string") return canonicalList(items[0], field);
  const out: (Mailbox | Group)[] = [];
  for (const item of items) {
    if (typeof item === "string") out.push(...canonicalList(item, field));
    else for (const entry of parseAddressEntries([item as Mailbox], field)) out.push(canonicalEntry(entry));
  }
  return Object.freeze(out);
}

const NO_ENTRIES: readonly (Mailbox | Group)[] = Object.freeze([]);

/**
 * The frozen entries of one address-list string, kept by the string: frozen entries can be
 * shared, so a bulk send's From (the same string in every message) is parsed and frozen once.
 */
const CANONICAL_LISTS = new Map<string, readonly (Mailbox | Group)[]>();

function canonicalList(input: string, field: string): readonly (Mailbox | Group)[] {
  const known = CANONICAL_LISTS.get(input);
  if (known !== undefined) return known;
  const bad = findLineBreakOrNul(input);
  if (bad >= 0) throw new BadHeaderError(field, `${field} contains ${describeChar(input.charCodeAt(bad))} at offset ${bad}; header values must be one line`);
  const entries = Object.freeze(parseList(input, field).map(canonicalEntry));
  remember(CANONICAL_LISTS, input, entries);
  return entries;
}

function canonicalEntry(entry: Mailbox | Group): Mailbox | Group {
  return "group" in entry ? Object.freeze({ group: entry.group, members: Object.freeze(entry.members.map(canonicalMailbox)) as Mailbox[] }) : canonicalMailbox(entry);
}

function canonicalMailbox(m: Mailbox): Mailbox {
  if (CANONICAL.has(m)) return m;
  const spec = SPEC_OF.get(m) ?? parseAddrSpec(m.address, false);
  const frozen = Object.freeze(m);
  CANONICAL.set(frozen, spec);
  return frozen;
}

/**
 * One shape for every address field: `parseAddressEntries` with groups flattened to their
 * members (an empty group contributes none), as the SMTP envelope wants them.
 *
 * @throws BadHeaderError (naming `field`) for CR, LF or NUL anywhere.
 * @throws InvalidAddressError for anything that is not an address.
 */
export function normalizeAddresses(input: AddressInput | undefined, field: string): Mailbox[] {
  return parseAddressEntries(input, field).flatMap((entry) => ("group" in entry ? entry.members : [entry]));
}
