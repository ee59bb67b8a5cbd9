/**
 * `signMessage`: DKIM for messages built elsewhere, given as raw bytes.
 *
 * Bytes in memory come back as a Buffer: the DKIM-Signature fields, then the message with
 * its line breaks normalised to CRLF (what SMTP would send anyway, and what was signed).
 *
 * A stream can only be read once, but signing needs the body twice: once to hash it, then
 * to send it after the signature. So a streamed message is given as a function that opens
 * it (`() => createReadStream(path)`); it is called twice, and the second reading is
 * checked against the first (a SHA-256 of the bytes), the last chunk held back until it
 * matches, so a source that changes between readings fails instead of going out with a
 * signature that will not verify. Nothing is spooled to disk and memory stays bounded by
 * the chunk size. A one-shot Readable is refused with a clear error.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { InvalidArgumentError } from "../errors.js";
import { toSigners, type DkimSigner, type DkimSigners } from "./options.js";
import { HeaderSplitter, LineBreakNormalizer, parseHeaderFields } from "./raw-message.js";
import { assertSignable, bodyAlgorithms, hashBody, signFields, signingTime, type HeaderField, type SignOptions } from "./sign.js";

/** Opens the message afresh each time it is called; every call must give the same bytes. */
export type MessageSource = () => AsyncIterable<Uint8Array | string>;

export function signMessage(message: Uint8Array | string, signers: DkimSigners, options?: SignOptions): Promise<Buffer>;
export function signMessage(message: MessageSource, signers: DkimSigners, options?: SignOptions): Promise<Readable>;
export async function signMessage(message: Uint8Array | string | MessageSource, signers: DkimSigners, options: SignOptions = {}): Promise<Buffer | Readable> {
  const list = toSigners(signers);
  const time = signingTime(options.now);
  if (typeof message === "string" || message instanceof Uint8Array) {
    const bytes = typeof message === "string" ? Buffer.from(message, "utf8") : message;
    const normalizer = new LineBreakNormalizer();
    const normalized = Buffer.concat([normalizer.push(bytes), normalizer.end()]);
    const { signatures } = await read([normalized], list, time);
    return Buffer.concat([fieldBytes(signatures), normalized]);
  }
  if (typeof message === "function") {
    const first = await read(normalized(open(message)), list, time);
    return Readable.from(replay(message, fieldBytes(first.signatures), first.digest));
  }
  if (message !== null && typeof message === "object" && Symbol.asyncIterator in message) {
    throw new InvalidArgumentError("signMessage reads a streamed message twice (to hash it, then to send it after the signature): pass a function that opens it, e.g. () => createReadStream(path), or the bytes");
  }
  throw new InvalidArgumentError("signMessage takes the message as bytes (Buffer, Uint8Array), a string, or a function that returns a stream of it");
}

interface Reading {
  signatures: HeaderField[];
  /** SHA-256 of the normalised message. */
  digest: string;
}

/** One pass: header fields split off and checked, the body hashed, the signatures made. */
async function read(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, signers: readonly DkimSigner[], time: number): Promise<Reading> {
  const splitter = new HeaderSplitter();
  const digest = createHash("sha256");
  const iterator = (Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : (chunks as Iterable<Buffer>)[Symbol.iterator]()) as AsyncIterator<Buffer> | Iterator<Buffer>;
  let finished = false;
  try {
    let firstBody: Buffer | undefined;
    // The header block first: the fields are checked before any of the body is read.
    while (!splitter.done) {
      const next = await iterator.next();
      if (next.done) {
        finished = true;
        break;
      }
      digest.update(next.value);
      const body = splitter.push(next.value);
      if (splitter.done) firstBody = body;
    }
    const fields = parseHeaderFields(splitter.head());
    assertSignable(fields);
    const rest: AsyncIterable<Buffer> = {
      async *[Symbol.asyncIterator]() {
        if (firstBody !== undefined && firstBody.length > 0) yield firstBody;
        while (!finished) {
          const next = await iterator.next();
          if (next.done) finished = true;
          else {
            digest.update(next.value);
            yield next.value;
          }
        }
      },
    };
    const bodyHashes = await hashBody(rest, bodyAlgorithms(signers));
    return { signatures: signFields(fields, bodyHashes, signers, time), digest: digest.digest("base64") };
  } finally {
    // A message refused halfway (no From, a bad header line) must not leave its stream open.
    if (!finished) await iterator.return?.();
  }
}

function open(source: MessageSource): AsyncIterable<Uint8Array | string> {
  const stream = source();
  if (stream === null || typeof stream !== "object" || !(Symbol.asyncIterator in stream)) {
    throw new InvalidArgumentError("The message source must return a stream (a Readable or another async iterable of bytes)");
  }
  return stream;
}

async function* normalized(chunks: AsyncIterable<Uint8Array | string>): AsyncGenerator<Buffer> {
  const normalizer = new LineBreakNormalizer();
  for await (const chunk of chunks) {
    const out = normalizer.push(typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk);
    if (out.length > 0) yield out;
  }
  const tail = normalizer.end();
  if (tail.length > 0) yield tail;
}

/** The signed stream: the signature fields, then the message read again, proven equal to the first reading before its last chunk. */
async function* replay(source: MessageSource, signatures: Buffer, expected: string): AsyncGenerator<Buffer> {
  yield signatures;
  const digest = createHash("sha256");
  let held: Buffer | undefined;
  for await (const chunk of normalized(open(source))) {
    digest.update(chunk);
    if (held !== undefined) yield held;
    held = chunk;
  }
  if (digest.digest("base64") !== expected) {
    throw new InvalidArgumentError("The message source gave different bytes the second time it was read, so the signature would not verify; the source must give the same bytes on every call");
  }
  if (held !== undefined) yield held;
}

function fieldBytes(fields: readonly HeaderField[]): Buffer {
  return Buffer.from(fields.map(([name, value]) => `${name}:${value}\r\n`).join(""), "latin1");
}
