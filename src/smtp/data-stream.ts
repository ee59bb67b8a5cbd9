/**
 * The message body on its way to the wire.
 *
 * `DataEncoder` is the core (encode/flush/reset, no stream plumbing): it turns every bare
 * LF and bare CR into CRLF (so neither reaches the wire, RFC 5321 §2.3.8) and, for DATA,
 * doubles a "." at the start of a line (§4.5.2) and appends the terminating `.CRLF`
 * (after a CRLF if the body did not end with one). The only state carried across chunks
 * is two booleans: "at the start of a line" and "the last byte was a CR". `dataTransform`
 * adapts it to a Transform; `bdatChunks` cuts a normalised body into BDAT chunks.
 */
import { Transform, type TransformCallback } from "node:stream";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF_BYTES = Buffer.from("\r\n");
const TERMINATOR = Buffer.from(".\r\n");

export interface DataEncoderOptions {
  /** Double leading dots and append `.CRLF` (DATA). False for BDAT, which counts octets instead. */
  dotStuff?: boolean;
}

/** What the output does differently from the input at one position (see `DataEncoder.encode`). */
const INSERT_DOT = 0;
const INSERT_CR = 1;
const INSERT_LF = 2;
const SKIP = 3;
const EDIT_BYTE = [DOT, CR, LF];

export class DataEncoder {
  readonly #dotStuff: boolean;
  #lineStart = true;
  #lastWasCR = false;
  /** Edits found in the current chunk: position * 4 + kind, in order. */
  readonly #edits: number[] = [];

  constructor(options: DataEncoderOptions = {}) {
    this.#dotStuff = options.dotStuff ?? true;
  }

  /**
   * Encodes a chunk; returns what can be emitted now (a new buffer: the caller may reuse
   * its own). The chunk is walked with `indexOf` from one CR or LF to the next (Node's
   * native scan, several times cheaper than a loop over the bytes), noting where the output
   * differs: a CR added before a bare LF, an LF after a bare CR, a dot doubled at a line
   * start, an LF dropped after a CR that ended the previous chunk. Then the runs between
   * those places are copied whole. A canonical body without leading dots is one copy.
   */
  encode(chunk: Uint8Array): Buffer {
    const input = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = input.length;
    if (n === 0) return Buffer.alloc(0);
    const edits = this.#edits;
    edits.length = 0;
    const dotStuff = this.#dotStuff;
    let pos = 0;
    if (this.#lastWasCR && input[0] === LF) {
      // CR LF: the CRLF was already emitted for the CR.
      edits.push(SKIP);
      pos = 1;
    }
    // Whether `pos` starts a line (a CR that ended the previous chunk ended its line too).
    let lineStart = this.#lineStart;
    let lastWasCR = false;
    if (lineStart && dotStuff && input[pos] === DOT) edits.push(pos * 4 + INSERT_DOT);
    let cr = input.indexOf(CR, pos);
    let lf = input.indexOf(LF, pos);
    while (cr !== -1 || lf !== -1) {
      if (lf !== -1 && (cr === -1 || lf < cr)) {
        edits.push(lf * 4 + INSERT_CR);
        pos = lf + 1;
        lf = input.indexOf(LF, pos);
      } else {
        if (cr + 1 < n && input[cr + 1] === LF) {
          pos = cr + 2;
          lf = input.indexOf(LF, pos);
        } else {
          edits.push((cr + 1) * 4 + INSERT_LF);
          pos = cr + 1;
          lastWasCR = pos === n;
        }
        cr = input.indexOf(CR, pos);
      }
      // A line starts at `pos` (past the end, `input[pos]` is undefined: no dot).
      lineStart = true;
      if (dotStuff && input[pos] === DOT) edits.push(pos * 4 + INSERT_DOT);
    }
    // Bytes after the last line break (or a chunk without one) leave a line unfinished.
    if (pos < n) lineStart = false;
    this.#lineStart = lineStart;
    this.#lastWasCR = lastWasCR;

    let size = n;
    for (const e of edits) size += (e & 3) === SKIP ? -1 : 1;
    const out = Buffer.allocUnsafe(size);
    let o = 0;
    let from = 0;
    for (const e of edits) {
      const at = e >> 2;
      o += input.copy(out, o, from, at);
      if ((e & 3) === SKIP) {
        from = at + 1;
      } else {
        out[o++] = EDIT_BYTE[e & 3]!;
        from = at;
      }
    }
    input.copy(out, o, from, n);
    return out;
  }

  /** The end of the body: a final CRLF if missing, and for DATA the `.CRLF` terminator. Resets. */
  flush(): Buffer {
    const parts: Buffer[] = [];
    if (!this.#lineStart) parts.push(CRLF_BYTES);
    if (this.#dotStuff) parts.push(TERMINATOR);
    this.reset();
    return Buffer.concat(parts);
  }

  reset(): void {
    this.#lineStart = true;
    this.#lastWasCR = false;
  }
}

/** A Transform that turns a raw body into the exact bytes that follow DATA's 354. */
export function dataTransform(options: DataEncoderOptions = {}): Transform {
  const encoder = new DataEncoder(options);
  return new Transform({
    // A string written to the stream reaches transform() as a Buffer already, in the
    // encoding it was written with (decodeStrings is on by default).
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      const out = encoder.encode(chunk);
      callback(null, out.length > 0 ? out : undefined);
    },
    flush(callback: TransformCallback) {
      const out = encoder.flush();
      callback(null, out.length > 0 ? out : undefined);
    },
  });
}

/** Encodes a whole body at once (tests, small messages). */
export function encodeData(body: Uint8Array | string, options: DataEncoderOptions = {}): Buffer {
  const encoder = new DataEncoder(options);
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return Buffer.concat([encoder.encode(bytes), encoder.flush()]);
}

export type BodySource = Uint8Array | string | NodeJS.ReadableStream | AsyncIterable<Uint8Array | string>;

/** Any accepted body as an async iterable of byte chunks; nothing is read ahead of the consumer. */
export async function* bodyChunks(body: BodySource): AsyncGenerator<Buffer> {
  if (typeof body === "string") {
    yield Buffer.from(body, "utf8");
    return;
  }
  if (body instanceof Uint8Array) {
    yield Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return;
  }
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] !== "function") {
    throw new TypeError("The message body must be a Buffer, Uint8Array, string, Readable or AsyncIterable<Uint8Array>");
  }
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    if (typeof chunk === "string") yield Buffer.from(chunk, "utf8");
    else if (chunk instanceof Uint8Array) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else throw new TypeError("The message body stream yielded something other than bytes or a string");
  }
}

/** The DATA bytes (normalised, dot-stuffed, terminated) of any body, chunk by chunk. */
export async function* dataChunks(body: BodySource): AsyncGenerator<Buffer> {
  const encoder = new DataEncoder({ dotStuff: true });
  for await (const chunk of bodyChunks(body)) {
    const out = encoder.encode(chunk);
    if (out.length > 0) yield out;
  }
  yield encoder.flush();
}

export interface BdatChunk {
  readonly bytes: Buffer;
  readonly last: boolean;
}

/**
 * RFC 3030 BDAT chunks of at most `chunkSize` octets of the CRLF-normalised body (no
 * dot-stuffing). One chunk is held back so that the final one can be marked LAST; memory
 * stays bounded by about twice the chunk size. An empty body is a single `BDAT 0 LAST`.
 */
export async function* bdatChunks(body: BodySource, chunkSize = 64 * 1024): AsyncGenerator<BdatChunk> {
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new RangeError("chunkSize must be a positive integer");
  const encoder = new DataEncoder({ dotStuff: false });
  let pending: Buffer[] = [];
  let pendingLength = 0;
  let held: Buffer | undefined;
  const take = function* (final: boolean): Generator<BdatChunk> {
    while (pendingLength >= chunkSize || (final && pendingLength > 0)) {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLength);
      const size = Math.min(chunkSize, all.length);
      const piece = all.subarray(0, size);
      const rest = all.subarray(size);
      pending = rest.length > 0 ? [rest] : [];
      pendingLength = rest.length;
      if (held) yield { bytes: held, last: false };
      held = piece;
    }
  };
  for await (const chunk of bodyChunks(body)) {
    const out = encoder.encode(chunk);
    if (out.length === 0) continue;
    pending.push(out);
    pendingLength += out.length;
    yield* take(false);
  }
  const tail = encoder.flush();
  if (tail.length > 0) {
    pending.push(tail);
    pendingLength += tail.length;
  }
  yield* take(true);
  yield { bytes: held ?? Buffer.alloc(0), last: true };
}
