/**
 * Base64 content transfer encoding (RFC 2045 §6.8): lines of at most 76 characters, each
 * ended by CRLF.
 *
 * The bulk of every chunk is encoded by Node's native encoder in one call; the lines are
 * then spread apart inside the one output buffer with `copyWithin` (a memmove per line),
 * so no intermediate strings are concatenated and nothing is copied twice in JavaScript.
 * Between chunks the encoder keeps at most two input bytes and the output column.
 */
import { InvalidArgumentError } from "../../errors.js";
import type { ChunkEncoder } from "./transform.js";

const ALPHABET = Buffer.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", "latin1");
const EMPTY = Buffer.alloc(0);
const CR = 0x0d;
const LF = 0x0a;
const PAD = 0x3d;

function checkLineLength(lineLength: number): void {
  if (!Number.isInteger(lineLength) || lineLength < 4 || lineLength % 4 !== 0) {
    throw new InvalidArgumentError(`base64 line length must be a positive multiple of 4, got ${lineLength}`);
  }
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

export class Base64Encoder implements ChunkEncoder {
  readonly lineLength: number;
  /** Input bytes not yet encoded because they do not make a whole 3-byte group (0..2). */
  private readonly pending = new Uint8Array(2);
  private pendingLength = 0;
  /** Characters already written on the current output line (a multiple of 4, < lineLength). */
  private column = 0;

  constructor(lineLength = 76) {
    checkLineLength(lineLength);
    this.lineLength = lineLength;
  }

  encode(chunk: Uint8Array): Buffer {
    const available = this.pendingLength + chunk.length;
    if (available < 3) {
      this.pending.set(chunk, this.pendingLength);
      this.pendingLength = available;
      return EMPTY;
    }
    // The group completed from the pending bytes, if any, is encoded by hand; the rest
    // of the chunk in whole groups by Node.
    const head = this.pendingLength === 0 ? 0 : 3 - this.pendingLength;
    const bodyLength = Math.floor((chunk.length - head) / 3) * 3;
    const body = asBuffer(chunk).subarray(head, head + bodyLength);
    const chars = (head === 0 ? 0 : 4) + (bodyLength / 3) * 4;
    const L = this.lineLength;
    const breaks = Math.floor((this.column + chars) / L);
    const out = Buffer.allocUnsafe(chars + breaks * 2);

    // Place the native encoding at the very end of the output, then move it forward line
    // by line. The destination never overtakes the source: what remains to be written
    // always covers what remains to be read plus its line breaks.
    let src = out.length - (bodyLength / 3) * 4;
    if (bodyLength > 0) out.write(body.toString("base64"), src, "latin1");
    let dst = 0;
    let column = this.column;
    if (head !== 0) {
      const p = this.pending;
      const b0 = p[0]!;
      const b1 = this.pendingLength === 2 ? p[1]! : chunk[0]!;
      const b2 = chunk[head - 1]!;
      out[dst++] = ALPHABET[b0 >> 2]!;
      out[dst++] = ALPHABET[((b0 & 3) << 4) | (b1 >> 4)]!;
      out[dst++] = ALPHABET[((b1 & 15) << 2) | (b2 >> 6)]!;
      out[dst++] = ALPHABET[b2 & 63]!;
      column += 4;
      if (column === L) {
        out[dst++] = CR;
        out[dst++] = LF;
        column = 0;
      }
    }
    const end = out.length;
    while (src < end) {
      const take = Math.min(L - column, end - src);
      out.copyWithin(dst, src, src + take);
      dst += take;
      src += take;
      column += take;
      if (column === L) {
        out[dst++] = CR;
        out[dst++] = LF;
        column = 0;
      }
    }
    this.column = column;

    const rest = chunk.length - head - bodyLength;
    this.pendingLength = rest;
    if (rest > 0) this.pending.set(chunk.subarray(chunk.length - rest));
    return out;
  }

  flush(): Buffer {
    if (this.pendingLength === 0 && this.column === 0) return EMPTY;
    const out = Buffer.allocUnsafe(6);
    let n = 0;
    if (this.pendingLength > 0) {
      const b0 = this.pending[0]!;
      const b1 = this.pendingLength === 2 ? this.pending[1]! : 0;
      out[n++] = ALPHABET[b0 >> 2]!;
      out[n++] = ALPHABET[((b0 & 3) << 4) | (b1 >> 4)]!;
      out[n++] = this.pendingLength === 2 ? ALPHABET[(b1 & 15) << 2]! : PAD;
      out[n++] = PAD;
    }
    out[n++] = CR;
    out[n++] = LF;
    this.reset();
    return out.subarray(0, n);
  }

  reset(): void {
    this.pendingLength = 0;
    this.column = 0;
  }
}

/** Base64 of `bytes` in CRLF-ended lines of `lineLength` characters (the last may be shorter). */
export function encodeBase64(bytes: Uint8Array, lineLength = 76): string {
  const encoder = new Base64Encoder(lineLength);
  const body = encoder.encode(bytes);
  const tail = encoder.flush();
  return body.toString("latin1") + tail.toString("latin1");
}

/** The exact length of `encodeBase64` output for `byteLength` input bytes, CRLFs included. */
export function base64EncodedLength(byteLength: number, lineLength = 76): number {
  checkLineLength(lineLength);
  const chars = Math.ceil(byteLength / 3) * 4;
  return chars + Math.ceil(chars / lineLength) * 2;
}
