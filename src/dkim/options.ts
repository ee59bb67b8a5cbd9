/**
 * A DKIM signer's options, checked once when the signer is made (at configure time), so
 * that a bad domain, key or header list is a clear ConfigurationError before anything is
 * sent, never a signature that silently fails at the receiver.
 */
import type { KeyObject } from "node:crypto";
import { domainToASCII } from "node:url";
import { inspect } from "node:util";
import { ConfigurationError } from "../errors.js";
import { processWide } from "../process-state.js";
import type { CanonicalizationAlgorithm } from "./canonicalize.js";
import { loadSigningKey, type DkimAlgorithm, type PrivateKeyInput } from "./keys.js";

export type DkimCanonicalization = "relaxed/relaxed" | "relaxed/simple" | "simple/relaxed" | "simple/simple";

export interface DkimOptions {
  /** The signing domain, d= (RFC 6376 §3.5); a Unicode name is written as its A-label. */
  domain: string;
  /** The selector, s=: the key's DNS record is `selector._domainkey.domain`. */
  selector: string;
  /** PEM text (string or Buffer), DER bytes or their base64, or a KeyObject. RSA of at least 1024 bits (2048 recommended) or Ed25519. */
  privateKey: PrivateKeyInput;
  /** Inferred from the key; when given it must match it. */
  algorithm?: DkimAlgorithm | undefined;
  /** header/body canonicalization, c=. Default "relaxed/relaxed". */
  canonicalization?: DkimCanonicalization | undefined;
  /** Header fields to sign when present (every instance). Must include From. Default: DEFAULT_SIGNED_HEADERS. */
  headers?: readonly string[] | undefined;
  /** Header fields signed once more than they occur, so that an added copy breaks the signature. `[]` for none. Default: DEFAULT_OVERSIGNED_HEADERS. */
  oversign?: readonly string[] | undefined;
  /** Milliseconds the signature stays valid: x= is t= plus this (rounded up to a second). At least an hour. Default: no x=. */
  expiresIn?: number | undefined;
  /** The agent or user identifier, i= (`user@domain` or `@sub.domain`), within `domain`. Default: none (verifiers take `@domain`). */
  identity?: string | undefined;
}

/**
 * Signed when present: the originator and recipient fields, the subject, date and ids, the
 * MIME fields that say how to read the body, the resent block, and the mailing-list fields
 * (List-Unsubscribe and List-Unsubscribe-Post must be signed for one-click unsubscribe,
 * RFC 8058 §4). The set RFC 6376 §5.4.1 recommends, plus Message-ID, the MIME fields and
 * Feedback-ID. Trace fields (Received, Return-Path) are never signed: relays add them.
 */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = Object.freeze([
  "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc",
  "mime-version", "content-type", "content-transfer-encoding", "content-id", "content-description",
  "in-reply-to", "references",
  "resent-date", "resent-from", "resent-sender", "resent-to", "resent-cc", "resent-message-id",
  "list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post", "list-subscribe", "list-post", "list-owner", "list-archive",
  "feedback-id",
]);

/** Signed once more than present (RFC 6376 §5.4.2, §8.15): an added copy of any of these breaks the signature. */
export const DEFAULT_OVERSIGNED_HEADERS: readonly string[] = Object.freeze(["from", "to", "cc", "subject", "date", "message-id", "reply-to"]);

const KNOWN_OPTIONS = new Set(["domain", "selector", "privateKey", "algorithm", "canonicalization", "headers", "oversign", "expiresIn", "identity"]);
const CANONICALIZATIONS = new Set<string>(["relaxed/relaxed", "relaxed/simple", "simple/relaxed", "simple/simple"]);
/** An hour: mail can wait in queues that long, and it catches a value given in seconds (86400 is a day in seconds, 86 s in ms). */
const MIN_EXPIRY_MS = 3_600_000;
/** Ten years: anything longer is a unit mistake, not a policy. */
const MAX_EXPIRY_MS = 10 * 366 * 24 * 3600 * 1000;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** RFC 5322 §3.6.8 field-name: printable ASCII except the colon. */
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * Each signer's key, out of sight of its properties, toJSON and inspect. One table per
 * process (see process-state.ts), so that a signer made by the ESM build (at `configure()`,
 * whose settings both builds share) signs in the CJS build too; it is also what
 * `instanceof DkimSigner` checks, for the same reason.
 */
const KEYS = processWide("dkim.signer-keys.v1", () => new WeakMap<object, KeyObject>());

/** The signer's private key (for the signing code; not part of the public entry). */
export function signerKey(signer: DkimSigner): KeyObject {
  return KEYS.get(signer)!;
}

/** A checked signer: make it once (e.g. at configure time) and sign any number of messages with it. */
export class DkimSigner {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly canonicalization: DkimCanonicalization;
  readonly headerCanonicalization: CanonicalizationAlgorithm;
  readonly bodyCanonicalization: CanonicalizationAlgorithm;
  /** Lower-case names, From first. */
  readonly headers: readonly string[];
  readonly oversign: readonly string[];
  readonly expiresIn: number | undefined;
  /** The i= value as written (dkim-quoted-printable), or undefined. */
  readonly identity: string | undefined;
  /** RSA modulus length, or 256 for Ed25519. */
  readonly keyBits: number;

  /** A signer from either build of missive in this process (its key is in the shared table). */
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && KEYS.has(value);
  }

  constructor(options: DkimOptions) {
    if (typeof options !== "object" || options === null) throw new ConfigurationError("dkim", "A DKIM signer needs an options object: { domain, selector, privateKey }");
    for (const key of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(key)) {
        const hint = key === "length" || key === "l" ? " (missive never writes l=: a body length lets anyone append content)" : "";
        throw new ConfigurationError(`dkim.${key}`, `Unknown DKIM option "${key}"${hint}; known: ${[...KNOWN_OPTIONS].join(", ")}`);
      }
    }
    this.domain = signingDomain(options.domain);
    this.selector = selectorName(options.selector);
    if (this.selector.length + "._domainkey.".length + this.domain.length > 253) {
      throw new ConfigurationError("dkim.selector", `${this.selector}._domainkey.${this.domain} is longer than a DNS name may be (253)`);
    }
    if (options.privateKey === undefined || options.privateKey === null) throw new ConfigurationError("dkim.privateKey", "dkim.privateKey is required");
    const signingKey = loadSigningKey(options.privateKey);
    KEYS.set(this, signingKey.key);
    this.keyBits = signingKey.bits;
    if (options.algorithm !== undefined && options.algorithm !== signingKey.algorithm) {
      const known = options.algorithm === "rsa-sha256" || options.algorithm === "ed25519-sha256";
      throw new ConfigurationError(
        "dkim.algorithm",
        known
          ? `dkim.algorithm is ${options.algorithm} but the key is ${signingKey.algorithm === "rsa-sha256" ? "an RSA" : "an Ed25519"} key (leave algorithm out: it follows the key)`
          : `dkim.algorithm must be "rsa-sha256" or "ed25519-sha256", not ${JSON.stringify(options.algorithm)} (rsa-sha1 is not allowed, RFC 8301)`,
      );
    }
    this.algorithm = signingKey.algorithm;

    const c = options.canonicalization ?? "relaxed/relaxed";
    if (typeof c !== "string" || !CANONICALIZATIONS.has(c)) {
      throw new ConfigurationError("dkim.canonicalization", `dkim.canonicalization must be one of ${[...CANONICALIZATIONS].join(", ")}, not ${JSON.stringify(c)}`);
    }
    this.canonicalization = c;
    [this.headerCanonicalization, this.bodyCanonicalization] = c.split("/") as [CanonicalizationAlgorithm, CanonicalizationAlgorithm];

    const headers = checkNames(options.headers ?? DEFAULT_SIGNED_HEADERS, "dkim.headers");
    if (!headers.includes("from")) throw new ConfigurationError("dkim.headers", "dkim.headers must include From: RFC 6376 §5.4 requires it to be signed");
    this.headers = Object.freeze(["from", ...headers.filter((h) => h !== "from")]);
    this.oversign = Object.freeze(checkNames(options.oversign ?? DEFAULT_OVERSIGNED_HEADERS, "dkim.oversign"));

    if (options.expiresIn !== undefined) {
      const ms = options.expiresIn;
      if (typeof ms !== "number" || !Number.isFinite(ms) || ms < MIN_EXPIRY_MS || ms > MAX_EXPIRY_MS) {
        const seconds = typeof ms === "number" && ms > 0 && ms < MIN_EXPIRY_MS ? ` (it is in milliseconds: ${ms} is ${ms / 1000} seconds; did you mean ${ms * 1000}?)` : "";
        throw new ConfigurationError("dkim.expiresIn", `dkim.expiresIn must be a number of milliseconds from one hour to ten years${seconds}`);
      }
    }
    this.expiresIn = options.expiresIn;
    this.identity = options.identity === undefined ? undefined : checkIdentity(options.identity, this.domain);
    Object.freeze(this);
  }

  toJSON(): Record<string, unknown> {
    return {
      domain: this.domain,
      selector: this.selector,
      algorithm: this.algorithm,
      canonicalization: this.canonicalization,
      headers: this.headers,
      oversign: this.oversign,
      expiresIn: this.expiresIn,
      identity: this.identity,
      keyBits: this.keyBits,
      privateKey: "<redacted>",
    };
  }

  [inspect.custom](): string {
    return `DkimSigner ${inspect(this.toJSON())}`;
  }
}

/** A signer or its options, or a list of them (several signatures, e.g. RSA and Ed25519). */
export type DkimSignerInput = DkimSigner | DkimOptions;
export type DkimSigners = DkimSignerInput | readonly DkimSignerInput[];
/** What the `dkim` option takes in configure(), on a backend and on a message: signers, or `false` to send unsigned. */
export type DkimSetting = DkimSigners | false;

/** Makes signers of options (already-made signers pass through); refuses an empty list and two signers with one selector. */
export function toSigners(input: DkimSigners): DkimSigner[] {
  const list = Array.isArray(input) ? (input as readonly DkimSignerInput[]) : [input as DkimSignerInput];
  if (list.length === 0) throw new ConfigurationError("dkim", "No DKIM signer given: pass { domain, selector, privateKey } or a list of them");
  const signers = list.map((s) => (s instanceof DkimSigner ? s : new DkimSigner(s)));
  const seen = new Set<string>();
  for (const s of signers) {
    const name = `${s.selector}._domainkey.${s.domain}`;
    if (seen.has(name)) throw new ConfigurationError("dkim.selector", `Two DKIM signers use ${name}; each key needs its own selector (one DNS record per selector)`);
    seen.add(name);
  }
  return signers;
}

/**
 * The `dkim` option wherever it is given (configure(), a backend, a message): one signer's
 * options or a DkimSigner, a list of them, or `false` for "do not sign here". Checked now
 * and returned as ready signers (frozen list) or `false`; a mistake is a ConfigurationError
 * naming the option where it was given: `setting` is that place ("dkim",
 * "backends.bulk.dkim"), and an entry of a list is `dkim[1]`, so a bad key in the second
 * signer is `dkim[1].privateKey`.
 */
export function dkimSetting(value: unknown, setting = "dkim"): readonly DkimSigner[] | false {
  if (value === false) return false;
  if (typeof value !== "object" || value === null) {
    throw new ConfigurationError(setting, `${setting} takes a DKIM signer's options { domain, selector, privateKey }, a DkimSigner, a list of them, or false for no signing; not ${value === true ? "true" : typeof value}`);
  }
  const list = Array.isArray(value) ? (value as readonly unknown[]) : [value];
  const signers = list.map((entry, i) => signerNamed(entry as DkimSignerInput, Array.isArray(value) ? `${setting}[${i}]` : setting));
  try {
    return Object.freeze(toSigners(signers));
  } catch (error) {
    throw renamed(error, setting);
  }
}

/**
 * A signer whose refusals name its options from `prefix` instead of "dkim" (a place in the
 * settings such as `backends.bulk.dkim[0]`), or by `names` when the options came from
 * elsewhere (`{ privateKey: "--dkim-key key.pem" }` for a command-line flag, an environment
 * variable). A DkimSigner passes through.
 */
export function signerNamed(input: DkimSignerInput, prefix: string, names: Readonly<Record<string, string>> = {}): DkimSigner {
  if (input instanceof DkimSigner) return input;
  try {
    return new DkimSigner(input);
  } catch (error) {
    throw renamed(error, prefix, names);
  }
}

/** A DkimSigner's ConfigurationError with "dkim" (or "dkim.option") replaced by the caller's name for it, in `setting` and in the text. */
function renamed(error: unknown, prefix: string, names: Readonly<Record<string, string>> = {}): unknown {
  if (!(error instanceof ConfigurationError) || !(error.setting === "dkim" || error.setting.startsWith("dkim."))) return error;
  const option = error.setting.slice("dkim.".length);
  const name = option === "" ? prefix : (names[option] ?? `${prefix}.${option}`);
  const message = option === "" ? error.message : error.message.split(error.setting).join(name);
  return new ConfigurationError(name, message);
}

/** A signing domain (d=) as DkimSigner checks it: lower case, Unicode as A-labels. Throws ConfigurationError. */
export function signingDomain(input: unknown, setting = "dkim.domain"): string {
  return checkDomain(input, setting, 2);
}

/** A selector (s=) as DkimSigner checks it. Throws ConfigurationError. */
export function selectorName(input: unknown, setting = "dkim.selector"): string {
  return checkDomain(input, setting, 1);
}

/** A DNS name of LDH labels (RFC 5890 A-labels for Unicode input), lower case, no trailing dot. */
function checkDomain(input: unknown, setting: string, minLabels: number): string {
  const what = minLabels > 1 ? "a domain" : "a selector";
  if (typeof input !== "string" || input === "") throw new ConfigurationError(setting, `${setting} is required (${what}, e.g. ${minLabels > 1 ? "example.com" : "s2026"})`);
  if (input.endsWith(".")) throw new ConfigurationError(setting, `${setting} ${JSON.stringify(input)} must be written without the trailing dot`);
  const ascii = /^[\x00-\x7f]*$/.test(input) ? input.toLowerCase() : domainToASCII(input);
  const labels = ascii.split(".");
  const valid = ascii !== "" && ascii.length <= 253 && labels.length >= minLabels && labels.every((l) => LDH_LABEL.test(l)) && !/^[0-9]+$/.test(labels[labels.length - 1]!);
  if (!valid) {
    throw new ConfigurationError(setting, `${setting} ${JSON.stringify(input)} is not ${what}: ${minLabels > 1 ? "at least two " : ""}labels of letters, digits and inner hyphens, separated by dots`);
  }
  return ascii;
}

function checkNames(input: unknown, setting: string): string[] {
  if (!Array.isArray(input)) throw new ConfigurationError(setting, `${setting} must be a list of header names`);
  const names: string[] = [];
  for (const name of input as unknown[]) {
    if (typeof name !== "string" || !FIELD_NAME.test(name)) throw new ConfigurationError(setting, `${setting}: ${JSON.stringify(name)} is not a header field name`);
    const lower = name.toLowerCase();
    if (!names.includes(lower)) names.push(lower);
  }
  return names;
}

/**
 * i= (RFC 6376 §3.5): `[local-part]@domain`, the domain d= itself or a subdomain of it; the
 * value is written in dkim-quoted-printable (§2.11), so a local part may hold any character.
 */
function checkIdentity(input: unknown, domain: string): string {
  const setting = "dkim.identity";
  if (typeof input !== "string") throw new ConfigurationError(setting, `${setting} must be a string like "@example.com" or "user@mail.example.com"`);
  const at = input.lastIndexOf("@");
  if (at < 0) throw new ConfigurationError(setting, `${setting} ${JSON.stringify(input)} needs an @ and a domain, e.g. "@${domain}"`);
  const local = input.slice(0, at);
  if (/[\r\n\0]/.test(local) || !local.isWellFormed()) throw new ConfigurationError(setting, `${setting} has a control character or a lone surrogate in its local part`);
  let idDomain: string;
  try {
    idDomain = checkDomain(input.slice(at + 1), setting, 1);
  } catch {
    throw new ConfigurationError(setting, `${setting} ${JSON.stringify(input)} does not end in a domain`);
  }
  if (idDomain !== domain && !idDomain.endsWith(`.${domain}`)) {
    throw new ConfigurationError(setting, `${setting} ${JSON.stringify(input)} is outside the signing domain ${domain}: i= must be ${domain} or a subdomain of it (RFC 6376 §3.5)`);
  }
  return `${dkimQuotedPrintable(local)}@${idDomain}`;
}

/** RFC 6376 §2.11: octets outside %x21-3A / %x3C / %x3E-7E become =XX. */
function dkimQuotedPrintable(text: string): string {
  let out = "";
  for (const b of Buffer.from(text, "utf8")) {
    out += (b >= 0x21 && b <= 0x3a) || b === 0x3c || (b >= 0x3e && b <= 0x7e) ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
