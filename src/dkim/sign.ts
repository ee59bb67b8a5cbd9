/**
 * DKIM signing, RFC 6376 §5 with rsa-sha256 (§3.3) and ed25519-sha256 (RFC 8463 §3).
 *
 * `signRendered` signs a message in its rendered shape: the header fields as they will be
 * written and a body that can be read as a stream. The body is read once, through one
 * canonicalizer per body canonicalization the signers use (at most two), each feeding a
 * SHA-256; memory is bounded by the chunk size. Then every signer selects and canonicalizes
 * its header fields, builds its DKIM-Signature field with an empty b= and signs that data
 * (§3.7). The fields returned go in front of the message, in order.
 */
import { createHash, sign as cryptoSign, type KeyObject } from "node:crypto";
import { InvalidArgumentError } from "../errors.js";
import { bodyCanonicalizer, canonicalizeHeader, type CanonicalizationAlgorithm } from "./canonicalize.js";
import type { DkimAlgorithm } from "./keys.js";
import { signerKey, toSigners, type DkimSigner, type DkimSigners } from "./options.js";
import { SIGNATURE_FIELD_NAME, unsignedValue, withSignature } from "./signature-field.js";

/** A header field as written: `${name}:${value}\r\n`; the value is everything after the colon, folding included. */
export type HeaderField = readonly [name: string, value: string];

/**
 * A message as it will go out: its header fields and the bytes after the blank line.
 * `body()` may be called more than once and gives the same bytes each time. Header fields
 * are written as UTF-8 (ASCII unless the message uses SMTPUTF8).
 */
export interface RenderedLike {
  readonly headers: readonly HeaderField[];
  body(): AsyncIterable<Uint8Array>;
}

export interface SignOptions {
  /** The signing time, t= (and the base of x=). Default: now. */
  now?: Date | number | undefined;
}

/** A header field in the bytes it is hashed from: `name:value` with folding, no final CRLF. */
export interface RawField {
  /** Lower case, without white space before the colon: what h= names. */
  readonly key: string;
  readonly bytes: Buffer;
}

export async function signRendered(rendered: RenderedLike, signers: DkimSigners, options: SignOptions = {}): Promise<HeaderField[]> {
  const list = toSigners(signers);
  const time = signingTime(options.now);
  const fields = rendered.headers.map(([name, value]) => rawField(Buffer.from(`${name}:${value}`, "utf8")));
  assertSignable(fields);
  const bodyHashes = await hashBody(rendered.body(), bodyAlgorithms(list));
  return signFields(fields, bodyHashes, list, time);
}

/** The field of a header line's bytes (`name:value`, no CRLF). */
export function rawField(bytes: Buffer): RawField {
  const colon = bytes.indexOf(0x3a);
  if (colon <= 0) throw new InvalidArgumentError(`Not a header field (no name before a colon): ${JSON.stringify(bytes.subarray(0, 60).toString("latin1"))}`);
  return { key: bytes.subarray(0, colon).toString("latin1").replace(/[ \t]+$/, "").toLowerCase(), bytes };
}

/** RFC 6376 §5.4: From must be signed, so it must be there; RFC 5322 §3.6 allows exactly one. */
export function assertSignable(fields: readonly RawField[]): void {
  const from = fields.filter((f) => f.key === "from").length;
  if (from !== 1) {
    throw new InvalidArgumentError(
      from === 0 ? "The message has no From header field; DKIM signs From (RFC 6376 §5.4)" : `The message has ${from} From header fields; it must have exactly one (RFC 5322 §3.6) to be signed`,
    );
  }
}

export function signingTime(now: Date | number | undefined): number {
  const ms = now === undefined ? Date.now() : now instanceof Date ? now.getTime() : now;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError("The DKIM signing time (now) must be a valid Date or a number of milliseconds since 1970");
  return Math.floor(ms / 1000);
}

export function bodyAlgorithms(signers: readonly DkimSigner[]): Set<CanonicalizationAlgorithm> {
  return new Set(signers.map((s) => s.bodyCanonicalization));
}

/** One pass over the body: the base64 SHA-256 of each canonical form asked for (bh=, RFC 6376 §3.7). */
export async function hashBody(body: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>, algorithms: ReadonlySet<CanonicalizationAlgorithm>): Promise<Map<CanonicalizationAlgorithm, string>> {
  const hashers = [...algorithms].map((algorithm) => {
    const hash = createHash("sha256");
    return { algorithm, hash, canonicalizer: bodyCanonicalizer(algorithm, (bytes) => hash.update(bytes)) };
  });
  for await (const chunk of body) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    for (const h of hashers) h.canonicalizer.push(bytes);
  }
  const hashes = new Map<CanonicalizationAlgorithm, string>();
  for (const h of hashers) {
    h.canonicalizer.end();
    hashes.set(h.algorithm, h.hash.digest("base64"));
  }
  return hashes;
}

/** Every signer's DKIM-Signature field for these header fields and body hashes. */
export function signFields(fields: readonly RawField[], bodyHashes: ReadonlyMap<CanonicalizationAlgorithm, string>, signers: readonly DkimSigner[], time: number): HeaderField[] {
  return signers.map((signer) => {
    const signedHeaders = headerList(fields, signer);
    const unsigned = unsignedValue({
      algorithm: signer.algorithm,
      canonicalization: signer.canonicalization,
      domain: signer.domain,
      selector: signer.selector,
      identity: signer.identity,
      timestamp: time,
      expires: signer.expiresIn === undefined ? undefined : time + Math.ceil(signer.expiresIn / 1000),
      signedHeaders,
      bodyHash: bodyHashes.get(signer.bodyCanonicalization)!,
    });
    const data = headerHashInput(fields, signedHeaders, Buffer.from(`${SIGNATURE_FIELD_NAME}:${unsigned}`, "latin1"), signer.headerCanonicalization);
    const signature = signData(signer.algorithm, signerKey(signer), data);
    return [SIGNATURE_FIELD_NAME, withSignature(unsigned, signature.toString("base64"))] as const;
  });
}

/**
 * h=: each name the signer signs, once per instance present (§5.4.2: a verifier takes
 * instances from the bottom up, so listing a name n times signs its last n instances),
 * then each over-signed name once more, which matches no instance and so makes any added
 * copy of it break the signature.
 */
export function headerList(fields: readonly RawField[], signer: DkimSigner): string[] {
  const counts = new Map<string, number>();
  for (const f of fields) counts.set(f.key, (counts.get(f.key) ?? 0) + 1);
  const list: string[] = [];
  const names = [...signer.headers, ...signer.oversign.filter((n) => !signer.headers.includes(n))];
  for (const name of names) for (let i = counts.get(name) ?? 0; i > 0; i--) list.push(name);
  list.push(...signer.oversign);
  return list;
}

/**
 * The data a signature covers (§3.7): the canonical form of each field h= names, taken
 * from the bottom up per name (a name with no instance left adds nothing, §5.4.2), then
 * the DKIM-Signature field itself (with b= empty) canonicalized, without its final CRLF.
 */
export function headerHashInput(fields: readonly RawField[], signedHeaders: readonly string[], signatureField: Buffer, algorithm: CanonicalizationAlgorithm): Buffer {
  const remaining = new Map<string, RawField[]>();
  for (const f of fields) {
    const list = remaining.get(f.key);
    if (list) list.push(f);
    else remaining.set(f.key, [f]);
  }
  const parts: Buffer[] = [];
  for (const name of signedHeaders) {
    const field = remaining.get(name)?.pop();
    if (field) parts.push(canonicalizeHeader(algorithm, field.bytes));
  }
  const own = canonicalizeHeader(algorithm, signatureField);
  parts.push(own.subarray(0, own.length - 2));
  return Buffer.concat(parts);
}

/**
 * rsa-sha256: RSASSA-PKCS1-v1_5 over SHA-256 of the data (RFC 6376 §3.3.1). ed25519-sha256:
 * PureEdDSA Ed25519 over the SHA-256 digest of the data (RFC 8463 §3). Both deterministic.
 */
export function signData(algorithm: DkimAlgorithm, key: KeyObject, data: Buffer): Buffer {
  if (algorithm === "rsa-sha256") return cryptoSign("sha256", data, key);
  return cryptoSign(null, createHash("sha256").update(data).digest(), key);
}
