/**
 * What the server said it can do, from its EHLO reply (RFC 5321 §4.1.1.1): the first line
 * names the server, every further line is `keyword *(SP param)`.
 */
import type { SmtpReply } from "./reply.js";

export class Capabilities {
  /** Every keyword (upper case) with its parameters as sent. */
  readonly extensions: ReadonlyMap<string, readonly string[]>;
  /** RFC 1870: the advertised message size limit in octets; 0 when SIZE has no (or a zero) limit. */
  readonly sizeLimit: number | undefined;
  readonly eightBitMime: boolean;
  readonly smtputf8: boolean;
  readonly pipelining: boolean;
  readonly starttls: boolean;
  readonly dsn: boolean;
  readonly enhancedStatusCodes: boolean;
  readonly chunking: boolean;
  /** SASL mechanisms (upper case), from `AUTH` and the legacy `AUTH=` form. */
  readonly authMechanisms: ReadonlySet<string>;
  /** True when this came from EHLO; false after a HELO fallback (no extensions at all). */
  readonly esmtp: boolean;

  constructor(extensions: ReadonlyMap<string, readonly string[]>, esmtp: boolean) {
    this.extensions = extensions;
    this.esmtp = esmtp;
    const size = extensions.get("SIZE");
    if (size === undefined) this.sizeLimit = undefined;
    else {
      const n = size[0] !== undefined && /^[0-9]{1,15}$/.test(size[0]) ? Number(size[0]) : 0;
      this.sizeLimit = n;
    }
    this.eightBitMime = extensions.has("8BITMIME");
    this.smtputf8 = extensions.has("SMTPUTF8");
    this.pipelining = extensions.has("PIPELINING");
    this.starttls = extensions.has("STARTTLS");
    this.dsn = extensions.has("DSN");
    this.enhancedStatusCodes = extensions.has("ENHANCEDSTATUSCODES");
    this.chunking = extensions.has("CHUNKING");
    const mechanisms = new Set<string>();
    for (const m of extensions.get("AUTH") ?? []) mechanisms.add(m.toUpperCase());
    for (const m of extensions.get("AUTH=") ?? []) mechanisms.add(m.toUpperCase());
    this.authMechanisms = mechanisms;
  }

  has(keyword: string): boolean {
    return this.extensions.has(keyword.toUpperCase());
  }

  params(keyword: string): readonly string[] | undefined {
    return this.extensions.get(keyword.toUpperCase());
  }

  /** What a server that only answered HELO offers: nothing. */
  static none(): Capabilities {
    return new Capabilities(new Map(), false);
  }

  toJSON(): Record<string, unknown> {
    return {
      esmtp: this.esmtp,
      sizeLimit: this.sizeLimit,
      eightBitMime: this.eightBitMime,
      smtputf8: this.smtputf8,
      pipelining: this.pipelining,
      starttls: this.starttls,
      dsn: this.dsn,
      enhancedStatusCodes: this.enhancedStatusCodes,
      chunking: this.chunking,
      authMechanisms: [...this.authMechanisms],
      extensions: Object.fromEntries(this.extensions),
    };
  }
}

/** Parses an EHLO reply. Lines that are not `keyword params` are ignored, never fatal. */
export function parseEhlo(reply: SmtpReply): Capabilities {
  const extensions = new Map<string, string[]>();
  for (const line of reply.lines.slice(1)) {
    const words = line.split(" ").filter((w) => w.length > 0);
    const first = words[0];
    if (first === undefined) continue;
    // Legacy "AUTH=LOGIN PLAIN" (sent by old Exchange and some appliances).
    if (first.length > 5 && first.slice(0, 5).toUpperCase() === "AUTH=") {
      const list = extensions.get("AUTH=") ?? [];
      list.push(first.slice(5), ...words.slice(1));
      extensions.set("AUTH=", list);
      continue;
    }
    if (!isKeyword(first)) continue;
    const keyword = first.toUpperCase();
    const params = words.slice(1);
    const existing = extensions.get(keyword);
    if (existing) existing.push(...params);
    else extensions.set(keyword, params);
  }
  return new Capabilities(extensions, true);
}

function isKeyword(word: string): boolean {
  // RFC 5321 §4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
  if (word.length === 0 || word.length > 64) return false;
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!alnum && !(c === 0x2d && i > 0)) return false;
  }
  return true;
}
