/**
 * A message given as raw bytes (built elsewhere), read the way it will travel: line breaks
 * normalised to CRLF (a bare CR or LF becomes CRLF, as the SMTP data stream does, RFC 5321
 * §2.3.8; a last line without a break gets one), the header block split off at the first
 * empty line and cut into fields with their exact bytes (folding kept), the rest streamed
 * as the body.
 */
import { InvalidArgumentError } from "../errors.js";
import { rawField, type RawField } from "./sign.js";

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from("\r\n");

/** A header block larger than this is not a message header. */
export const MAX_HEADER_BYTES = 1024 * 1024;

/** Bare CR and bare LF become CRLF; a chunk that needs no change is returned as it is. */
export class LineBreakNormalizer {
  /** The previous chunk ended in a CR, already written as CRLF: an LF starting this one belongs to it. */
  #lastWasCR = false;
  #lastByte = -1;

  push(chunk: Uint8Array): Buffer {
    const input = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (input.length === 0) return input;
    const parts: Buffer[] = [];
    let runStart = 0;
    let i = 0;
    if (this.#lastWasCR && input[0] === LF) {
      runStart = 1;
      i = 1;
      parts.push(input.subarray(0, 0));
    }
    for (; i < input.length; i++) {
      const c = input[i]!;
      if (c === CR) {
        if (i + 1 < input.length && input[i + 1] === LF) {
          i++; // CRLF stays as it is
          continue;
        }
        parts.push(input.subarray(runStart, i), CRLF);
        runStart = i + 1;
      } else if (c === LF) {
        parts.push(input.subarray(runStart, i), CRLF);
        runStart = i + 1;
      }
    }
    this.#lastByte = input[input.length - 1]!;
    this.#lastWasCR = this.#lastByte === CR;
    if (parts.length === 0) return input;
    if (runStart < input.length) parts.push(input.subarray(runStart));
    return Buffer.concat(parts);
  }

  /** A CRLF when the last line had no line break; the normaliser is then reset. */
  end(): Buffer {
    const last = this.#lastByte;
    this.#lastWasCR = false;
    this.#lastByte = -1;
    return last === -1 || last === CR || last === LF ? Buffer.alloc(0) : CRLF;
  }
}

/**
 * Splits normalised bytes into the header block and the body. The header block ends at
 * the first empty line (which belongs to neither); without one, the whole message is
 * header and the body is empty.
 */
export class HeaderSplitter {
  readonly #head: Buffer[] = [];
  #headLength = 0;
  /** How much of CRLF CRLF has just been seen; starting at 2 lets a leading CRLF end an empty header block. */
  #matched = 2;
  #done = false;

  get done(): boolean {
    return this.#done;
  }

  /** Takes a chunk; returns the part of it that is body (empty while still in the header block). */
  push(chunk: Buffer): Buffer {
    if (this.#done) return chunk;
    let matched = this.#matched;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      matched = c === (matched % 2 === 0 ? CR : LF) ? matched + 1 : c === CR ? 1 : 0;
      if (matched === 4) {
        // The header block keeps its last field's CRLF; the empty line's CRLF is dropped,
        // including its CR when that came at the end of the previous chunk.
        if (i === 0) this.#dropLastByte();
        else this.#keep(chunk.subarray(0, i - 1));
        this.#done = true;
        return chunk.subarray(i + 1);
      }
    }
    this.#matched = matched;
    this.#keep(chunk);
    return Buffer.alloc(0);
  }

  /** The header block so far: every field with its final CRLF. */
  head(): Buffer {
    return Buffer.concat(this.#head, this.#headLength);
  }

  #dropLastByte(): void {
    const last = this.#head.pop()!;
    if (last.length > 1) this.#head.push(last.subarray(0, last.length - 1));
    this.#headLength -= 1;
  }

  #keep(bytes: Buffer): void {
    this.#headLength += bytes.length;
    if (this.#headLength > MAX_HEADER_BYTES) throw new InvalidArgumentError(`The message's header block is larger than ${MAX_HEADER_BYTES} bytes (no empty line after the header fields?)`);
    if (bytes.length > 0) this.#head.push(Buffer.from(bytes)); // a copy: the source may reuse its buffers
  }
}

/**
 * The fields of a normalised header block (each line ending in CRLF). A line starting with
 * SP or HTAB continues the field before it (RFC 5322 §2.2.3); every other line must be
 * `name:value` with a name of printable ASCII.
 */
export function parseHeaderFields(head: Buffer): RawField[] {
  const fields: RawField[] = [];
  let start = -1;
  let offset = 0;
  while (offset < head.length) {
    let end = head.indexOf(CRLF, offset);
    if (end < 0) end = head.length;
    const first = head[offset];
    if (first === 0x20 || first === 0x09) {
      if (start < 0) throw new InvalidArgumentError("The message starts with a continuation line (white space) instead of a header field");
    } else {
      if (start >= 0) fields.push(field(head.subarray(start, offset - 2)));
      start = offset;
    }
    offset = end + 2;
  }
  if (start >= 0) fields.push(field(head.subarray(start, Math.min(head.length, offset) - 2)));
  return fields;
}

function field(bytes: Buffer): RawField {
  const colon = bytes.indexOf(0x3a);
  let nameEnd = colon;
  while (nameEnd > 0 && (bytes[nameEnd - 1] === 0x20 || bytes[nameEnd - 1] === 0x09)) nameEnd--;
  let ok = colon > 0 && nameEnd > 0;
  for (let i = 0; ok && i < nameEnd; i++) ok = bytes[i]! >= 0x21 && bytes[i]! <= 0x7e;
  if (!ok) throw new InvalidArgumentError(`Not a header field (a line of the header block needs "Name: value"): ${JSON.stringify(bytes.subarray(0, 60).toString("latin1"))}`);
  return rawField(bytes);
}
