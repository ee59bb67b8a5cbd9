/**
 * Content-Transfer-Encoding decoders (RFC 2045 §6) that take the body in chunks of any size
 * and keep only a few bytes across chunk boundaries, so that a part is decoded while it
 * streams past. Tolerant, as RFC 2045 §6.7 and §6.8 ask of readers: base64 skips characters
 * outside its alphabet, quoted-printable keeps a malformed `=`.
 */
import { decodeQuotedPrintable } from "../mime/encoding/quoted-printable.js";

export interface ChunkDecoder {
  decode(chunk: Uint8Array): Buffer;
  /** The rest; then the decoder is spent. */
  flush(): Buffer;
  /** Whether the input broke the encoding's rules (characters outside base64's alphabet, a stray last character). */
  readonly damaged: boolean;
}

const EMPTY = Buffer.alloc(0);

/** base64 alphabet value of each byte, -1 for anything else (RFC 2045 §6.8 Table 1). */
const BASE64_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) BASE64_VALUE["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;

function isLineSpace(b: number): boolean {
  return b === 0x0d || b === 0x0a || b === 0x20 || b === 0x09;
}

/**
 * base64 as RFC 2045 §6.8 wants it read: line breaks and white space skipped, any other
 * character outside the alphabet skipped (and noted), `=` ending a quantum. Decoding goes
 * on after padding, so that concatenated base64 (each piece padded) is read whole.
 */
export class Base64Decoder implements ChunkDecoder {
  #bits = 0;
  #count = 0;
  #damaged = false;

  get damaged(): boolean {
    return this.#damaged;
  }

  decode(chunk: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(Math.ceil((chunk.length * 3) / 4) + 3);
    let n = 0;
    // The state lives in locals inside the loop (field access per byte is what costs here).
    let bits = this.#bits;
    let count = this.#count;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      const v = BASE64_VALUE[b]!;
      if (v >= 0) {
        bits = (bits << 6) | v;
        if (++count === 4) {
          out[n++] = (bits >> 16) & 0xff;
          out[n++] = (bits >> 8) & 0xff;
          out[n++] = bits & 0xff;
          bits = 0;
          count = 0;
        }
      } else if (b === 0x3d) {
        // Padding ends the quantum; the bits left over are the pad's zeros.
        this.#bits = bits;
        this.#count = count;
        n = this.#endQuantum(out, n);
        bits = 0;
        count = 0;
      } else if (!isLineSpace(b)) {
        this.#damaged = true;
      }
    }
    this.#bits = bits;
    this.#count = count;
    return out.subarray(0, n);
  }

  /** Writes a padded (or final) partial quantum: 2 characters give 1 byte, 3 give 2, 1 gives none and is damage. */
  #endQuantum(out: Buffer, n: number): number {
    if (this.#count === 2) {
      out[n++] = (this.#bits >> 4) & 0xff;
    } else if (this.#count === 3) {
      out[n++] = (this.#bits >> 10) & 0xff;
      out[n++] = (this.#bits >> 2) & 0xff;
    } else if (this.#count === 1) {
      this.#damaged = true;
    }
    this.#bits = 0;
    this.#count = 0;
    return n;
  }

  flush(): Buffer {
    // Missing padding is tolerated (RFC 2045 §6.8: readers should be robust).
    const out = Buffer.alloc(2);
    return out.subarray(0, this.#endQuantum(out, 0));
  }
}

/** Longest run kept back while waiting for a line break (a body with no line break at all is decoded in slices). */
const MAX_QP_CARRY = 64 * 1024;

function isWsp(b: number): boolean {
  return b === 0x20 || b === 0x09;
}

/**
 * Quoted-printable (RFC 2045 §6.7) by lines: complete lines are decoded at once with the
 * same decoder the builder's tests use; the unfinished last line waits for more input (up
 * to 64 KiB, then it is cut where no `=XX` escape or trailing white space can be split).
 */
export class QuotedPrintableDecoder implements ChunkDecoder {
  #carry: Buffer = EMPTY;

  get damaged(): boolean {
    return false;
  }

  decode(chunk: Uint8Array): Buffer {
    const input = this.#carry.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.#carry, chunk]);
    // Cut after the last complete line break. A CR at the very end may be the first half of
    // a CRLF (and "=" CR LF is one soft break), so it waits with its line.
    let lastCr = input.lastIndexOf(0x0d);
    if (lastCr === input.length - 1) lastCr = lastCr === 0 ? -1 : input.lastIndexOf(0x0d, lastCr - 1);
    let cut = Math.max(input.lastIndexOf(0x0a), lastCr) + 1;
    if (cut === 0 && input.length > MAX_QP_CARRY) cut = safeCut(input);
    if (cut <= 0) {
      this.#carry = Buffer.from(input);
      return EMPTY;
    }
    this.#carry = Buffer.from(input.subarray(cut));
    return decodeQuotedPrintable(input.subarray(0, cut).toString("latin1"));
  }

  flush(): Buffer {
    const rest = this.#carry;
    this.#carry = EMPTY;
    return rest.length === 0 ? EMPTY : decodeQuotedPrintable(rest.toString("latin1"));
  }
}

/** A cut point in a long line that splits neither an `=XX` escape nor a run of white space a line end would drop. */
function safeCut(input: Buffer): number {
  let cut = input.length - 2;
  while (cut > 0 && (isWsp(input[cut - 1]!) || input[cut - 1] === 0x3d || input[cut - 2] === 0x3d)) cut--;
  return cut;
}

class IdentityDecoder implements ChunkDecoder {
  readonly damaged = false;
  decode(chunk: Uint8Array): Buffer {
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  flush(): Buffer {
    return EMPTY;
  }
}

/** The transfer encodings that leave bytes as they are (RFC 2045 §6.2, RFC 3030 §3 for binary). */
export const IDENTITY_ENCODINGS: ReadonlySet<string> = new Set(["7bit", "8bit", "binary"]);

/** A decoder for a lower-case Content-Transfer-Encoding, or undefined for one this parser does not know. */
export function decoderFor(transferEncoding: string): ChunkDecoder | undefined {
  if (transferEncoding === "base64") return new Base64Decoder();
  if (transferEncoding === "quoted-printable") return new QuotedPrintableDecoder();
  if (IDENTITY_ENCODINGS.has(transferEncoding)) return new IdentityDecoder();
  return undefined;
}

/** An identity decoder for unknown encodings: the bytes are kept as they were. */
export function passThrough(): ChunkDecoder {
  return new IdentityDecoder();
}
