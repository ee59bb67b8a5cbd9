/**
 * DKIM keys: reading a private key in the forms people have them in, checking that it can
 * sign (RSA of at least 1024 bits, RFC 8301 §3.2; or Ed25519, RFC 8463), and the public key
 * record that goes into DNS (RFC 6376 §3.6.1), split into strings of at most 255 octets
 * (RFC 1035 §3.3.14).
 */
import { createPrivateKey, createPublicKey, KeyObject } from "node:crypto";
import { ConfigurationError } from "../errors.js";

export type DkimAlgorithm = "rsa-sha256" | "ed25519-sha256";

/** What `privateKey` may be: PEM text (string or bytes), DER bytes or their base64, or a KeyObject. */
export type PrivateKeyInput = string | Uint8Array | KeyObject;

/** RFC 8301 §3.2: verifiers must refuse RSA keys under 1024 bits; signers should use 2048. */
export const MIN_RSA_BITS = 1024;

export interface SigningKey {
  readonly key: KeyObject;
  readonly algorithm: DkimAlgorithm;
  /** RSA modulus length, or 256 for Ed25519. */
  readonly bits: number;
}

/** PKCS#8 wrapping of a 32-byte Ed25519 seed (RFC 8410 §7): this prefix, then the seed. */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

const SETTING = "dkim.privateKey";

/** Reads and checks a signing key; every refusal is a ConfigurationError naming `dkim.privateKey`. */
export function loadSigningKey(input: PrivateKeyInput, setting = SETTING): SigningKey {
  const key = toKeyObject(input, setting);
  if (key.type !== "private") {
    throw new ConfigurationError(setting, `${setting} is a ${key.type} key; DKIM signs with the private key (the public key goes into DNS)`);
  }
  switch (key.asymmetricKeyType) {
    case "rsa": {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) {
        throw new ConfigurationError(setting, `${setting} is an RSA key of ${bits} bits, which receivers refuse; DKIM needs at least ${MIN_RSA_BITS} bits (RFC 8301), 2048 recommended`);
      }
      return { key, algorithm: "rsa-sha256", bits };
    }
    case "ed25519":
      return { key, algorithm: "ed25519-sha256", bits: 256 };
    default:
      throw new ConfigurationError(setting, `${setting} is a ${key.asymmetricKeyType ?? "unknown"} key; DKIM signs with RSA (rsa-sha256) or Ed25519 (ed25519-sha256)`);
  }
}

function toKeyObject(input: PrivateKeyInput, setting: string): KeyObject {
  if (input instanceof KeyObject) return input;
  let bytes: Buffer;
  if (typeof input === "string") {
    let text = input.trim();
    // A PEM pasted into an environment variable often arrives with literal "\n".
    if (text.startsWith("-----BEGIN") && !text.includes("\n") && text.includes("\\n")) text = text.replaceAll("\\n", "\n");
    if (text.startsWith("-----BEGIN")) return fromPem(text, setting);
    if (text === "") throw new ConfigurationError(setting, `${setting} is empty`);
    if (!/^[A-Za-z0-9+/\s]+=*$/.test(text)) throw notAKey(setting);
    bytes = Buffer.from(text.replace(/\s+/g, ""), "base64");
  } else if (input instanceof Uint8Array) {
    bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const head = bytes.subarray(0, 64).toString("latin1").trimStart();
    if (head.startsWith("-----BEGIN")) return fromPem(bytes.toString("latin1"), setting);
  } else {
    throw new ConfigurationError(setting, `${setting} must be a PEM string, a Buffer or a KeyObject`);
  }
  // dkimpy and RFC 8463 §A.2 write an Ed25519 private key as its bare 32-byte seed, and the
  // public key (the DNS p= value) is 32 bytes too: nothing tells them apart, and signing
  // with a public key taken for a seed would look fine until every verifier failed.
  if (bytes.length === 32) {
    throw new ConfigurationError(setting, `${setting} is 32 bare bytes, which may be an Ed25519 seed or an Ed25519 public key; give the private key as PKCS#8 PEM (\`missive dkim keygen\` writes one) or as a KeyObject (ed25519PrivateKeyFromSeed(seed))`);
  }
  for (const type of ["pkcs8", "pkcs1"] as const) {
    try {
      return createPrivateKey({ key: bytes, format: "der", type });
    } catch {
      // try the next form
    }
  }
  if (looksLikePublicDer(bytes)) throw publicGiven(setting);
  throw notAKey(setting);
}

/** A KeyObject from a bare 32-byte Ed25519 seed (the form dkimpy and RFC 8463 §A.2 use), wrapped as PKCS#8. */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array | string): KeyObject {
  const bytes = typeof seed === "string" ? Buffer.from(seed, "base64") : Buffer.from(seed);
  if (bytes.length !== 32) throw new ConfigurationError(SETTING, `an Ed25519 seed is 32 bytes, not ${bytes.length}`);
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, bytes]), format: "der", type: "pkcs8" });
}

function fromPem(pem: string, setting: string): KeyObject {
  if (/-----BEGIN (?:[A-Z0-9 ]+ )?PUBLIC KEY-----|-----BEGIN CERTIFICATE-----/.test(pem) && !/PRIVATE KEY-----/.test(pem)) throw publicGiven(setting);
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw new ConfigurationError(setting, `${setting} is encrypted; decrypt it first, e.g. crypto.createPrivateKey({ key, passphrase }), and pass the KeyObject`);
  }
  try {
    return createPrivateKey(pem);
  } catch {
    throw notAKey(setting);
  }
}

function looksLikePublicDer(bytes: Buffer): boolean {
  try {
    createPublicKey({ key: bytes, format: "der", type: "spki" });
    return true;
  } catch {
    return false;
  }
}

function publicGiven(setting: string): ConfigurationError {
  return new ConfigurationError(setting, `${setting} is a public key (or certificate); DKIM signs with the private key (the public key goes into DNS)`);
}

function notAKey(setting: string): ConfigurationError {
  return new ConfigurationError(setting, `${setting} is not a private key: give PEM text ("-----BEGIN PRIVATE KEY-----"), DER bytes (PKCS#8 or PKCS#1) or their base64, or a KeyObject`);
}

/**
 * The `p=` value of the key record: for RSA the DER SubjectPublicKeyInfo in base64 (what
 * every signer publishes and every verifier reads); for Ed25519 the raw 32-byte public key
 * in base64 (RFC 8463 §4.2).
 */
export function publicKeyData(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  const spki = publicKey.export({ format: "der", type: "spki" });
  return publicKey.asymmetricKeyType === "ed25519" ? spki.subarray(spki.length - 32).toString("base64") : spki.toString("base64");
}

/** The TXT record's text, RFC 6376 §3.6.1: `v=DKIM1; k=rsa|ed25519; p=…`. */
export function keyRecord(key: KeyObject): string {
  const type = key.asymmetricKeyType;
  if (type !== "rsa" && type !== "ed25519") throw new ConfigurationError(SETTING, `a ${type ?? "unknown"} key has no DKIM key record`);
  return `v=DKIM1; k=${type}; p=${publicKeyData(key)}`;
}

/** RFC 1035 §3.3.14: a TXT record is a list of strings of at most 255 octets; DNS joins them. */
export function txtStrings(text: string, max = 255): string[] {
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += max) parts.push(text.slice(i, i + max));
  return parts.length > 0 ? parts : [""];
}

/** The record's owner name, RFC 6376 §3.6.2.1: `selector._domainkey.domain`. */
export function keyRecordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/** One zone-file line: `name. IN TXT "…" "…"` (the key record text has no `"` or `\` to escape). */
export function zoneFileLine(selector: string, domain: string, key: KeyObject): string {
  const strings = txtStrings(keyRecord(key)).map((s) => `"${s}"`);
  return `${keyRecordName(selector, domain)}. IN TXT ${strings.join(" ")}`;
}
